"""An archive that is slow to store: pynetdicom's own SCP, whose C-STORE handler waits
before answering. Usage: slow_archive.py PORT DIR SECONDS. Prints `storing UID` (flushed)
when each store begins; writes each instance to DIR/UID.dcm."""
import os
import sys
import time

from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

port, directory, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])


def store(event):
    ds = event.dataset
    print("storing", ds.SOPInstanceUID, flush=True)
    time.sleep(seconds)
    ds.file_meta = event.file_meta
    ds.save_as(os.path.join(directory, ds.SOPInstanceUID + ".dcm"), enforce_file_format=True)
    return 0x0000


ae = AE(ae_title="ARCHIVE")
ae.supported_contexts = AllStoragePresentationContexts
ae.add_supported_context(Verification)
ae.start_server(("127.0.0.1", port), block=True, evt_handlers=[(evt.EVT_C_STORE, store)])
