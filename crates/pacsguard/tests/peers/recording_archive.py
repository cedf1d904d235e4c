"""An archive that records every A-ASSOCIATE-RQ it receives: pynetdicom's own SCP
(Verification and storage). Usage: recording_archive.py PORT [USERNAME PASSCODE].
For each request it prints one JSON line (flushed): the user identity item pynetdicom
decoded from it (type, primary field, secondary field; null when there is none) and the
request's bytes in hex. With USERNAME and PASSCODE, a request carrying a user identity
is admitted only with those (pynetdicom's EVT_USER_ID), and answered with a positive
response when asked; one carrying none is admitted as before."""
import json
import sys

from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.pdu import A_ASSOCIATE_RQ
from pynetdicom.sop_class import Verification

port = int(sys.argv[1])
expected = (sys.argv[2].encode(), sys.argv[3].encode()) if len(sys.argv) > 3 else None


def on_pdu(event):
    pdu = event.pdu
    if not isinstance(pdu, A_ASSOCIATE_RQ):
        return
    identity = None
    info = pdu.user_information
    if info is not None and info.user_identity is not None:
        item = info.user_identity
        identity = [
            item.user_identity_type,
            (item.primary_field or b"").decode("latin-1"),
            (item.secondary_field or b"").decode("latin-1"),
        ]
    print(json.dumps({"identity": identity, "raw": pdu.encode().hex()}), flush=True)


def on_user_id(event):
    if expected is None:
        return True, None
    return (event.primary_field, event.secondary_field) == expected, None


def store(event):
    return 0x0000


ae = AE(ae_title="ARCHIVE")
ae.supported_contexts = AllStoragePresentationContexts
ae.add_supported_context(Verification)
ae.start_server(
    ("127.0.0.1", port),
    block=True,
    evt_handlers=[
        (evt.EVT_PDU_RECV, on_pdu),
        (evt.EVT_USER_ID, on_user_id),
        (evt.EVT_C_STORE, store),
    ],
)
