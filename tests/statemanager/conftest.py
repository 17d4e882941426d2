from tests.statemanager.fixtures import *  # noqa: F403
