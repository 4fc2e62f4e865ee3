"""Where the bytes of an ML Program's weight file go (report.json `weights_layout`).

coremltools writes every constant of >= 10 elements (float16/float32/int8/uint8) as its own
blob of MIL's blob storage, version 2 (`weight.bin`): a 64-byte file header (blob count,
version), then per blob a 64-byte metadata record (sentinel 0xDEADBEEF, data type, size,
offset) and the data, each starting on a 64-byte boundary. A constant of fewer elements is
stored inline in the program instead. So a weight file is

    64 + blobs x 64 + payload + alignment padding

bytes, and on a small model the per-blob records are a visible share: DS-CNN's coreml-int8
file is 24,368 payload bytes in 30 blobs (10 int8 weights, 10 fp16 per-channel scales,
10 fp16 biases) plus 2,024 bytes of records and padding (docs/coreml.md).
"""

from __future__ import annotations

import struct

FILE_HEADER_BYTES = 64
BLOB_RECORD_BYTES = 64
ALIGNMENT = 64
SENTINEL = 0xDEADBEEF
DTYPES = {1: "float16", 2: "float32", 3: "uint8", 4: "int8", 5: "bfloat16", 6: "int16",
          7: "uint16", 8: "int4", 9: "uint1", 10: "uint2", 11: "uint3", 12: "uint4",
          13: "uint6", 14: "int32", 15: "uint32"}


def weight_file_layout(data: bytes) -> dict:
    """Blob count, payload bytes per data type, and the bytes of headers and alignment padding
    of a blob-storage v2 weight file (an empty file: no blobs)."""
    if not data:
        return {"blobs": 0, "payload_bytes": 0, "header_bytes": 0, "padding_bytes": 0,
                "payload_by_dtype": {}}
    count, _version = struct.unpack_from("<II", data, 0)
    payload: dict[str, int] = {}
    offset = FILE_HEADER_BYTES
    for _ in range(count):
        offset = -(-offset // ALIGNMENT) * ALIGNMENT
        sentinel, dtype, size, data_offset = struct.unpack_from("<IIQQ", data, offset)
        if sentinel != SENTINEL:
            raise ValueError(f"weight file: no blob record at byte {offset}")
        name = DTYPES.get(dtype, f"type{dtype}")
        payload[name] = payload.get(name, 0) + size
        offset = data_offset + size
    total_payload = sum(payload.values())
    headers = FILE_HEADER_BYTES + count * BLOB_RECORD_BYTES
    return {"blobs": count, "payload_bytes": total_payload, "header_bytes": headers,
            "padding_bytes": len(data) - total_payload - headers,
            "payload_by_dtype": dict(sorted(payload.items()))}
