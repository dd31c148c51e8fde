"""SQL Server's side of PRELOGIN for the Python loopback peers of the end-to-end tests.

Debian has no SQL Server: the stand-in reads one PRELOGIN packet and answers as SQL Server 2019
(15.0.4153) that requires encryption, the answer's bytes laid out as MS-TDS 2.2.6.5 has them
(VERSION, ENCRYPTION=required, INSTOPT=match, THREADID, MARS=off).
"""

PRELOGIN_ANSWER = bytes.fromhex("0401002b00000100" "00001a000601002000010200210001030022000004002200" "01ff"
                                "0f00103900000300" "00")


def answer_prelogin(conn, timeout=5):
    """Reads a PRELOGIN (packet type 0x12) from the accepted socket and sends the answer."""
    conn.settimeout(timeout)
    header = conn.recv(8)
    if len(header) == 8 and header[0] == 0x12:
        conn.recv(int.from_bytes(header[2:4], "big") - 8)
        conn.sendall(PRELOGIN_ANSWER)
