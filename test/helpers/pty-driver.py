"""Runs a command in a pseudo-terminal and follows a script of steps (no node-pty needed).

argv[1]: JSON list of steps: ["send", text] writes text to the terminal; ["expect", regex, seconds] reads until
the regex matches the output read since the previous expect (fails on timeout). argv[2:]: the command.
Prints one JSON object: {"ok", "error", "output", "code"}.
"""
import fcntl
import json
import os
import pty
import struct
import termios
import re
import select
import subprocess
import sys
import time

steps = json.loads(sys.argv[1])
master, slave = pty.openpty()
# A real terminal has a size; 24 rows of 100 columns.
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
proc = subprocess.Popen(sys.argv[2:], stdin=slave, stdout=slave, stderr=slave, close_fds=True, start_new_session=True)
os.close(slave)
output = b""
mark = 0
error = None


def read_some(timeout):
    global output
    ready, _, _ = select.select([master], [], [], timeout)
    if not ready:
        return False
    try:
        data = os.read(master, 65536)
    except OSError:
        return False
    output += data
    return bool(data)


for step in steps:
    if step[0] == "send":
        os.write(master, step[1].encode())
    elif step[0] == "expect":
        pattern = re.compile(step[1], re.S)
        deadline = time.time() + step[2]
        while not pattern.search(output[mark:].decode("utf-8", "replace").replace("\r", "")):
            if time.time() > deadline or (not read_some(0.05) and proc.poll() is not None):
                error = "timed out waiting for %r" % step[1]
                break
        if error:
            break
        mark = len(output)

code = None
deadline = time.time() + 20
while code is None and time.time() < deadline:
    read_some(0.05)
    code = proc.poll()
if code is None:
    proc.kill()
    code = proc.wait()
while read_some(0.05):
    pass
print(json.dumps({"ok": error is None, "error": error, "output": output.decode("utf-8", "replace").replace("\r", ""), "code": code}))
