"""What API calls and blueprints share: validation, the version model, save-with-version, and
the admin and API base classes. Below the apps, above the expression language."""
