#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/: server PRELOGIN answers and SQL Server Browser
answers laid out as MS-TDS 2.2.6.5 and MS-SQLR 2.2.5 describe them, valid ones and each way of
being wrong that the probe must classify. Run it again after changing a seed; commit the output."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def packet(ptype, payload, status=0x01, length=None):
    length = len(payload) + 8 if length is None else length
    return struct.pack(">BBHHBB", ptype, status, length, 0, 1, 0) + payload


def answer(major=15, minor=0, build=4153, encryption=0, instance=0, mars=0, extra=b""):
    table = [(0x00, 6), (0x01, 1), (0x02, 1), (0x03, 0), (0x04, 1)]
    entries, data = b"", b""
    at = len(table) * 5 + 1
    values = [struct.pack(">BBHH", major, minor, build, 0), bytes([encryption]), bytes([instance]), b"", bytes([mars])]
    for (token, size), value in zip(table, values):
        entries += struct.pack(">BHH", token, at, size)
        data += value
        at += size
    return entries + b"\xff" + data + extra


def write(corpus, name, data):
    folder = os.path.join(HERE, "corpus", corpus)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


good = answer()
seeds = {
    "sql2019": packet(0x04, good),
    "sql2008r2_required": packet(0x04, answer(10, 50, 1600, encryption=3)),
    "sql2022_fedauth": packet(0x04, b"\x00\x00\x10\x00\x06\x01\x00\x16\x00\x01\x06\x00\x17\x00\x01\xff"
                                    b"\x10\x00\x03\xe8\x00\x00\x01\x01"),
    "two_packets": packet(0x04, good[:10], status=0) + packet(0x04, good[10:]),
    "wrong_type": packet(0x12, good),
    "length_under_header": packet(0x04, good, length=3),
    "length_over_arrived": packet(0x04, good, length=400),
    "length_over_maximum": packet(0x04, good, length=0xFFFF),
    "offset_outside": packet(0x04, good[:1] + b"\x00\xc8" + good[3:]),
    "option_length_oversized": packet(0x04, good[:3] + b"\x7f\xff" + good[5:]),
    "no_terminator": packet(0x04, b"\x01\x00\x00\x00\x01"),
    "version_twice": packet(0x04, good[:5] + b"\x00" + good[6:]),
    "no_version": packet(0x04, b"\x01\x00\x06\x00\x01\xff\x00"),
    "header_only": packet(0x04, b""),
    "http": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
    "tls_records": packet(0x12, b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00"),
}
for name, data in seeds.items():
    write("tds_prelogin", name, data)


def browser(text):
    data = text.encode()
    return b"\x05" + struct.pack("<H", len(data)) + data


browser_seeds = {
    "one_instance": browser("ServerName;DB1;InstanceName;ILLIAD;IsClustered;No;Version;15.0.2000.5;tcp;1433;;"),
    "two_instances": browser("ServerName;DB1;InstanceName;SQLEXPRESS;IsClustered;No;Version;15.0.2000.5;tcp;1500;"
                             "np;\\\\DB1\\pipe\\sql\\query;;ServerName;DB1;InstanceName;ILLIAD;IsClustered;No;"
                             "Version;16.0.1000.6;np;\\\\DB1\\pipe\\MSSQL$ILLIAD\\sql\\query;;"),
    "size_mismatch": b"\x05\xff\xff" + b"InstanceName;A;tcp;1433;;",
    "bad_port": browser("InstanceName;ILLIAD;tcp;99999;;"),
    "no_record_end": browser("InstanceName;ILLIAD;tcp;1433;"),
    "empty_record": browser(";"),
    "not_svr_resp": b"\x04ILLIAD\x00",
}
for name, data in browser_seeds.items():
    write("tds_browser", name, data)
