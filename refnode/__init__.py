"""refnode: the xmtpd-shaped reference node that shakedown deploys, faults and verifies."""

__version__ = "0.1.0"
