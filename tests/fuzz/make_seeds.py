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


# ---- Z39.50 answers (Z39.50-2003 layouts; shaped as yaz-ztest 5.34 sends them) ----
def tlv(tag, content):
    """BER: `tag` as bytes (already with class and form), definite length in the shortest form."""
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        digits = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(digits)]) + digits
    return tag + length + content


init_fields = (b"\x83\x02\x00\xe0" b"\x84\x02\x00\xc0" b"\x85\x03\x10\x00\x00" b"\x86\x03\x10\x00\x00")
accepted = tlv(b"\xb5", init_fields + b"\x8c\x01\xff" + tlv(b"\x9f\x6e", b"81") + tlv(b"\x9f\x6f", b"GFS/YAZ")
               + tlv(b"\x9f\x70", b"5.34.0"))
bib1_diag = tlv(b"\x06", b"\x2a\x86\x48\xce\x13\x04\x01") + b"\x02\x01\x6d" + tlv(b"\x1a", b"Nope")
z3950_seeds = {
    "init_accepted": accepted,
    "init_rejected": tlv(b"\xb5", init_fields + b"\x8c\x01\x00" + tlv(b"\x9f\x6f", b"Test")),
    "init_indefinite": b"\xb5\x80" + init_fields + b"\x8c\x01\xff\x00\x00",
    "init_long_form": b"\xb5\x84\x00\x00\x00\x15" + init_fields + b"\x8c\x01\xff",
    "init_five_octet_length": b"\xb5\x85\x00\x00\x00\x00\x15" + init_fields + b"\x8c\x01\xff",
    "init_truncated": accepted[:20],
    "search_42_hits": tlv(b"\xb7", b"\x97\x01\x2a\x98\x01\x00\x99\x01\x01\x96\x01\xff"),
    "search_failed_109": tlv(b"\xb7", b"\x97\x01\x00\x98\x01\x00\x99\x01\x00\x96\x01\x00" + tlv(b"\xbf\x81\x02", bib1_diag)),
    "close_busy": tlv(b"\xbf\x30", b"\x9f\x81\x53\x01\x02" + tlv(b"\x83", b"busy")),
    "close_indefinite": b"\xbf\x30\x80\x9f\x81\x53\x01\x00\x00\x00",
    "deep_nesting": b"\xa0\x80" * 40 + b"\x00\x00" * 40,
    "octet_string_truncated": tlv(b"\xb5", init_fields + b"\x9f\x6f\x20GFS"),
    "http": b"HTTP/1.1 400 Bad Request\r\n\r\n",
    # Found by the fuzzer: Close whose diagnosticInformation [3] comes in constructed form
    # (one OCTET STRING segment, indefinite length). libyaz 5.34 writes through a null pointer
    # on it; ber::refuse_for_libyaz keeps it away from the decoder.
    "yaz_segmented_string": bytes.fromhex("bf300c9f81530105a3800401410000"),
    "yaz_empty_constructed_string": bytes.fromhex("bf30079f81530105a300"),
}
for name, data in z3950_seeds.items():
    write("z3950_response", name, data)
    write("ber_frame", name, data)

# ---- ISO ILL (ISO 10161-1, EXPLICIT tags as in yaz's ill9702.asn) ----
# The probe's own Status-Query as libyaz encodes it (indefinite lengths throughout): a valid
# ILL-APDU to mutate from; then what answers on an ILL port when it is not ILL.
status_query = bytes.fromhex(
    "72803080800102a14da018a016a1141b12434f4e4e45435449564954592d4147454e54a11a1b18636f6e6e65637469"
    "766974792d6167656e742d70726f6265a2151b136e6f2d737563682d7472616e73616374696f6ea214a01280083230"
    "3236313132338106313230303030a318a016a1141b12434f4e4e45435449564954592d4147454e54bf2e541b52636f"
    "6e6e65637469766974792d6167656e742072656163686162696c6974792070726f62653a20737461747573206f6620"
    "61207472616e73616374696f6e207468617420646f6573206e6f7420657869737400000000")
ill_seeds = {
    "status_query": status_query,
    "status_query_truncated": status_query[:60],
    "report_undecodable": b"\x73\x03\x01\x01\x01",
    "z3950_on_ill_port": accepted,
    "http": b"HTTP/1.1 400 Bad Request\r\n\r\n",
}
for name, data in ill_seeds.items():
    write("ill_reply", name, data)
write("ber_frame", "ill_status_query", status_query)
# LDAP (RFC 4511): server answers as BER LDAPMessages, valid ones as slapd 2.5 sends them and
# each way of being wrong the probe must classify.
def ber_length(n, long4=False):
    if long4:
        return b"\x84" + struct.pack(">I", n)
    if n < 0x80:
        return bytes([n])
    digits = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(digits)]) + digits


def tlv(tag, content, long4=False):
    return bytes([tag]) + ber_length(len(content), long4) + content


def ldap_message(msgid, op, long4=False):
    return tlv(0x30, tlv(0x02, bytes([msgid]), long4) + op, long4)


def result(code, diagnostic=b"", long4=False):
    return tlv(0x0a, bytes([code]), long4) + tlv(0x04, b"", long4) + tlv(0x04, diagnostic, long4)


def root_dse(msgid, contexts=(b"dc=example,dc=org",), versions=(b"3",), long4=False):
    def attribute(name, values):
        return tlv(0x30, tlv(0x04, name, long4) + tlv(0x31, b"".join(tlv(0x04, v, long4) for v in values), long4), long4)
    attrs = attribute(b"namingContexts", contexts) + attribute(b"supportedLDAPVersion", versions)
    return ldap_message(msgid, tlv(0x64, tlv(0x04, b"", long4) + tlv(0x30, attrs, long4), long4), long4)


def deep(levels):
    inner = b"\x04\x00"
    for _ in range(levels):
        inner = tlv(0x30, inner)
    return ldap_message(1, tlv(0x79, inner))


entry_and_done = root_dse(1) + ldap_message(1, tlv(0x65, result(0)))
ldap_seeds = {
    "root_dse_entry_and_done": entry_and_done,
    "root_dse_long_form_0x84": root_dse(1, long4=True) + ldap_message(1, tlv(0x65, result(0, long4=True), True), True),
    "root_dse_many_contexts": root_dse(2, contexts=[b"dc=n%d" % i for i in range(12)], versions=(b"2", b"3")),
    "bind_success": ldap_message(1, tlv(0x61, result(0))),
    "bind_invalid_credentials": ldap_message(1, tlv(0x61, result(49, b"invalid credentials"))),
    "starttls_success": ldap_message(1, tlv(0x78, result(0) + tlv(0x8a, b"1.3.6.1.4.1.1466.20037"))),
    "starttls_refused": ldap_message(1, tlv(0x78, result(2, b"unsupported extended operation"))),
    "notice_of_disconnection": ldap_message(0, tlv(0x78, result(52, b"shutting down") + tlv(0x8a, b"1.3.6.1.4.1.1466.20036"))),
    "done_with_referral_and_controls": ldap_message(1, tlv(0x65, result(10) + tlv(0xa3, tlv(0x04, b"ldap://x/"))) + tlv(0xa0, tlv(0x30, tlv(0x04, b"1.2.3")))),
    "search_reference": ldap_message(1, tlv(0x73, tlv(0x04, b"ldap://other/"))) + ldap_message(1, tlv(0x65, result(0))),
    "indefinite_length": b"\x30\x80\x02\x01\x01\x65\x07\x0a\x01\x00\x04\x00\x04\x00\x00\x00",
    "length_over_4_bytes": b"\x30\x85\x00\x00\x00\x00\x0c" + ldap_message(1, tlv(0x65, result(0)))[2:],
    "length_over_limit": b"\x30\x84\x7f\xff\xff\xff\x02\x01\x01",
    "truncated_octet_string": entry_and_done[:30],
    "truncated_header": b"\x30\x84\x00",
    "deep_nesting": deep(20),
    "nesting_at_limit": deep(13),
    "high_tag_number": b"\x30\x05\x1f\x81\x01\x01\x00",
    "constructed_octet_string": ldap_message(1, tlv(0x61, tlv(0x0a, b"\x00") + tlv(0x24, tlv(0x04, b"x")) + tlv(0x04, b""))),
    "negative_message_id": tlv(0x30, tlv(0x02, b"\xff") + tlv(0x61, result(0))),
    "trailing_after_controls": ldap_message(1, tlv(0x61, result(0)) + tlv(0xa0, b"") + b"\x04\x00"),
    "http": b"HTTP/1.1 400 Bad Request\r\n\r\n",
}
for name, data in ldap_seeds.items():
    write("ldap_message", name, data)
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

# Captured frames for the inbound watch: the first byte picks the link type (0 cooked v1,
# 1 cooked v2, 2 Ethernet, 3 raw IP), then the frame as libpcap hands it over.
def tcp(sport, dport, flags, offset=5):
    return struct.pack(">HHIIBBHHH", sport, dport, 0, 0, offset << 4, flags, 65535, 0, 0)


def ipv4(payload, src=b"\xc0\x00\x02\x0a", dst=b"\xc0\x00\x02\x01", proto=6, frag=0):
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, frag, 64, proto, 0, src, dst) + payload


def ipv6(payload, next_header=6):
    src = bytes.fromhex("20010db8000000000000000000000010")
    dst = bytes.fromhex("20010db8000000000000000000000001")
    return struct.pack(">IHBB", 0x60000000, len(payload), next_header, 64) + src + dst + payload


def sll(packet, proto=0x0800, pkttype=0):
    return struct.pack(">HHH8sH", pkttype, 1, 6, b"\x00" * 8, proto) + packet


def sll2(packet, proto=0x0800):
    return struct.pack(">HHIHBB8s", proto, 0, 2, 1, 0, 6, b"\x00" * 8) + packet


SYN = tcp(40000, 210, 0x02)
frame_seeds = {
    "sll_v4_syn": b"\x00" + sll(ipv4(SYN)),
    "sll_v4_synack": b"\x00" + sll(ipv4(tcp(210, 40000, 0x12), src=b"\xc0\x00\x02\x01", dst=b"\xc0\x00\x02\x0a"), pkttype=4),
    "sll_v6_syn": b"\x00" + sll(ipv6(SYN), proto=0x86DD),
    "sll_v6_hop_by_hop": b"\x00" + sll(ipv6(b"\x06\x00" + b"\x00" * 6 + SYN, next_header=0), proto=0x86DD),
    "sll_v6_fragment": b"\x00" + sll(ipv6(b"\x06\x00\x00\x00\x00\x00\x00\x00" + SYN, next_header=44), proto=0x86DD),
    "sll2_v4_rst": b"\x01" + sll2(ipv4(tcp(210, 40000, 0x14))),
    "ethernet_vlan": b"\x02" + b"\xaa" * 12 + b"\x81\x00\x00\x07\x08\x00" + ipv4(SYN),
    "raw_v4_options": b"\x03" + ipv4(tcp(40000, 210, 0x02, offset=10) + b"\x00" * 20),
    "raw_udp": b"\x03" + ipv4(SYN, proto=17),
    "raw_fragment": b"\x03" + ipv4(SYN, frag=0x0010),
    "raw_cut": b"\x03" + ipv4(SYN)[:30],
}
for name, data in frame_seeds.items():
    write("inbound_frame", name, data)
