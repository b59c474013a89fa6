"""Test hosts for the remote path: qemu VMs with a real Debian kernel (``qemu``) and VM-like
containers running systemd and sshd (``sshhosts``). Everything they create is named
``sdvm...`` and removed at teardown, or by the reaper when a run died."""
