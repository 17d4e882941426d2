"""The shared core below every app: the settings object, the doorbells and the web plumbing
(DRF permissions, pagination, errors, parsers; admin widgets). It imports no other project
package."""
