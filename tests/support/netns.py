"""Re-running a test script inside a network namespace of its own (root only): its listeners,
nft rules and sysctls then touch nothing outside it, and go with it."""
import os
import subprocess
import sys


def rerun_in_own_namespace(script, prefix, timeout):
    """Runs `script` again, with this process's arguments and --inside-netns, in a new network
    namespace whose loopback is up; deletes the namespace after. Returns the run's exit code."""
    ns = f"{prefix}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        return subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(script), *sys.argv[1:],
                               "--inside-netns"], timeout=timeout).returncode
    finally:
        subprocess.run(["ip", "netns", "delete", ns])
