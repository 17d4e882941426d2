"""What the hosts tell the layers above them, which they do not know."""

from django.dispatch import Signal

# Sent with `host` (the host's name) when a host is resumed: the orders its pause held may
# go at once (orders connects to it) rather than when their backoff ends.
host_resumed = Signal()
