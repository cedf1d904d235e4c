"""A peer that keeps every per-message limit and holds its association all the same
(pynetdicom's SCU): one association, then a C-ECHO (MODE echo) or a C-STORE of FILE
(MODE store) every GAP seconds, for at most SECONDS, then a release; MODE burst sends
FILE three times first (as three instances), then a C-ECHO every GAP seconds. Usage:
steady_peer.py PORT CALLING CALLED MODE GAP SECONDS [FILE]. Prints one line at the
end: "aborted after T N" (the association was aborted T seconds after it was
established, N operations succeeded) or "released after T N"."""
import sys, time

from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification
from pydicom import dcmread

port, calling, called, mode, gap, seconds = sys.argv[1:7]
port, gap, seconds = int(port), float(gap), float(seconds)
data = dcmread(sys.argv[7]) if mode in ("store", "burst") else None

ae = AE(ae_title=calling)
ae.add_requested_context(Verification)
ae.add_requested_context(CTImageStorage)
ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
assoc = ae.associate("127.0.0.1", port, ae_title=called)
assert assoc.is_established, "the gateway accepted the association"
began, done = time.monotonic(), 0
if mode == "burst":
    uid = data.SOPInstanceUID
    for i in range(3):
        data.SOPInstanceUID = f"{uid[:60]}.{i}"
        status = assoc.send_c_store(data)
        if status and status.Status == 0:
            done += 1
    mode = "echo"
while time.monotonic() - began < seconds and assoc.is_established:
    status = assoc.send_c_echo() if mode == "echo" else assoc.send_c_store(data)
    if status and status.Status == 0:
        done += 1
    # Slept in small steps, so that an A-ABORT is seen when it comes.
    until = time.monotonic() + gap
    while time.monotonic() < until and assoc.is_established:
        time.sleep(0.05)
took = time.monotonic() - began
if assoc.is_aborted or not assoc.is_established:
    print(f"aborted after {took:.1f} {done}")
else:
    assoc.release()
    print(f"released after {took:.1f} {done}")
