"""An archive that takes a request and stops answering: pynetdicom's own SCP.
Usage: stalling_archive.py PORT INSTANCE PENDING GAP STALL.

* C-ECHO: waits STALL seconds before answering.
* C-FIND: sends PENDING pending responses, GAP seconds apart, then waits STALL
  seconds before its final response.
* C-GET: stores INSTANCE PENDING times to the requestor on its own association
  (a pending response after each, GAP seconds apart), then waits STALL seconds.
* C-MOVE: stores INSTANCE (a DICOM file) PENDING times into its own destination AE
  (so a pending response follows each, GAP seconds apart), then waits STALL seconds.

Prints `ECHO`, `FIND`, `GET`, `MOVE` when each request arrives and `stalling SERVICE` when it
stops answering (flushed)."""
import sys
import time

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

port, instance = int(sys.argv[1]), sys.argv[2]
pending, gap, stall = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])


def say(text):
    print(text, flush=True)


def echo(event):
    say("ECHO")
    say("stalling ECHO")
    time.sleep(stall)
    return 0x0000


def find(event):
    say("FIND")
    for i in range(pending):
        time.sleep(gap)
        match = Dataset()
        match.QueryRetrieveLevel = "STUDY"
        match.StudyInstanceUID = f"1.2.826.0.1.3680043.10.1137.28.{i + 1}"
        yield 0xFF00, match
    say("stalling FIND")
    time.sleep(stall)


# The move destination: an AE of this archive's own, so that the sub-operations
# succeed and a pending response follows each.
destination = AE(ae_title="DEST")
destination.supported_contexts = AllStoragePresentationContexts
destination_server = destination.start_server(
    ("127.0.0.1", 0),
    block=False,
    evt_handlers=[(evt.EVT_C_STORE, lambda event: 0x0000)],
)
destination_port = destination_server.server_address[1]


def move(event):
    say("MOVE")
    yield "127.0.0.1", destination_port
    yield pending
    ds = dcmread(instance)
    for _ in range(pending):
        time.sleep(gap)
        yield 0xFF00, ds
    say("stalling MOVE")
    time.sleep(stall)


def get(event):
    say("GET")
    yield pending
    ds = dcmread(instance)
    for _ in range(pending):
        time.sleep(gap)
        yield 0xFF00, ds
    say("stalling GET")
    time.sleep(stall)


ae = AE(ae_title="ARCHIVE")
ae.add_supported_context(Verification)
ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
# What the sub-operations store: requested of the move destination, and taken in the
# SCU role a C-GET's requestor proposes it in.
stored_class = dcmread(instance, stop_before_pixels=True).SOPClassUID
ae.add_requested_context(stored_class)
ae.add_supported_context(stored_class, scu_role=True, scp_role=True)
ae.start_server(
    ("127.0.0.1", port),
    block=True,
    evt_handlers=[
        (evt.EVT_C_ECHO, echo),
        (evt.EVT_C_FIND, find),
        (evt.EVT_C_MOVE, move),
        (evt.EVT_C_GET, get),
    ],
)
