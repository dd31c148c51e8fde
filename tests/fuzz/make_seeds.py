#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/: server PRELOGIN answers and SQL Server Browser
answers laid out as MS-TDS 2.2.6.5 and MS-SQLR 2.2.5 describe them, DNS replies as RFC 1035 4.1 does, valid ones and each way of
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


# DNS replies (RFC 1035 4.1) to www.example.org; the first byte is the fuzz target's type
# selector (0: A, 1: AAAA), the rest one datagram.
def dns_name(name):
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\x00"


QNAME = dns_name("www.example.org")


def dns_reply(qtype, answers=b"", ancount=0, flags=0x8180, qdcount=1, rid=0x1234, question=None, arcount=0, extra=b""):
    header = struct.pack(">HHHHHH", rid, flags, qdcount, ancount, 0, arcount)
    if question is None:
        question = QNAME + struct.pack(">HH", qtype, 1)
    return header + question + answers + extra


def rr(rtype, rdata, owner=b"\xc0\x0c", ttl=3600, rdlength=None):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata) if rdlength is None else rdlength) + rdata


A_REC = rr(1, bytes([192, 0, 2, 10]))
AAAA_REC = rr(28, bytes.fromhex("20010db8000000000000000000000010"))
CNAME_1 = rr(5, dns_name("edge.example.net"), ttl=60)
OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
dns_seeds = {
    "a_one": b"\x00" + dns_reply(1, A_REC, 1),
    "a_two_opt": b"\x00" + dns_reply(1, A_REC + rr(1, bytes([192, 0, 2, 11]), ttl=5), 2, arcount=1, extra=OPT),
    "aaaa_one": b"\x01" + dns_reply(28, AAAA_REC, 1),
    "cname_chain": b"\x00" + dns_reply(1, CNAME_1 + rr(5, dns_name("e1.cdn.example"), owner=dns_name("edge.example.net"))
                                      + rr(1, bytes([192, 0, 2, 44]), owner=dns_name("e1.cdn.example")), 3),
    "cname_loop": b"\x00" + dns_reply(1, rr(5, b"\xc0\x0c"), 1),
    "pointer_loop": b"\x00" + dns_reply(1, rr(1, bytes(4), owner=b"\xc0\x21"), 1),
    "pointer_forward": b"\x00" + dns_reply(1, rr(1, bytes(4), owner=b"\xc0\xff"), 1),
    "a_wrong_length": b"\x00" + dns_reply(1, rr(1, bytes(3)), 1),
    "rdlength_past_end": b"\x00" + dns_reply(1, rr(1, bytes(4), rdlength=0xffff), 1),
    "ancount_past_end": b"\x00" + dns_reply(1, A_REC, 9),
    "nxdomain": b"\x00" + dns_reply(1, flags=0x8183),
    "servfail": b"\x00" + dns_reply(1, flags=0x8182),
    "refused_no_question": b"\x00" + dns_reply(1, flags=0x8185, qdcount=0, question=b""),
    "truncated": b"\x00" + dns_reply(1, flags=0x8380),
    "nodata_soa": b"\x00" + dns_reply(1, b"", 0),
    "other_question": b"\x00" + dns_reply(1, A_REC, 1, question=dns_name("www.example.com") + b"\x00\x01\x00\x01"),
    "query_not_reply": b"\x00" + dns_reply(1, flags=0x0100),
    "header_only": b"\x00" + struct.pack(">HHHHHH", 0x1234, 0x8180, 1, 0, 0, 0),
    "short": b"\x00\x12\x34\x81",
    "long_label": b"\x00" + dns_reply(1, question=b"\x7f" + b"a" * 127 + b"\x00\x00\x01\x00\x01"),
}
for name, data in dns_seeds.items():
    write("dns_answer", name, data)
