#include "tests/support/dns_server.h"

#include "tests/support/sockets.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace connectivity::testing {

namespace {

using Bytes = std::vector<std::uint8_t>;

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  while (text.size() > 1 && text.back() == '.') text.pop_back();
  return text;
}

void put16(Bytes& out, unsigned value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value & 0xff));
}

void put32(Bytes& out, std::uint32_t value) {
  put16(out, value >> 16);
  put16(out, value & 0xffff);
}

// RFC 1035 3.1: length-prefixed labels, then the root's zero.
void put_name(Bytes& out, const std::string& name) {
  std::size_t start = 0;
  const std::string text = lower(name);
  while (start < text.size()) {
    const std::size_t dot = std::min(text.find('.', start), text.size());
    out.push_back(static_cast<std::uint8_t>(dot - start));
    out.insert(out.end(), text.begin() + static_cast<long>(start), text.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  out.push_back(0);
}

struct Query {
  std::uint16_t id = 0;
  bool recursion_desired = false;
  std::string name;
  std::uint16_t type = 0;
  std::size_t question_end = 0;  // offset just past QTYPE and QCLASS
};

// The query's header and question (RFC 1035 4.1.1, 4.1.2); false for anything else.
bool parse_query(const Bytes& in, Query& query) {
  if (in.size() < 12 || (in[2] & 0x80) || in[4] != 0 || in[5] != 1) return false;
  query.id = static_cast<std::uint16_t>(in[0] << 8 | in[1]);
  query.recursion_desired = in[2] & 0x01;
  std::size_t at = 12;
  for (int labels = 0; labels < 128; ++labels) {
    if (at >= in.size()) return false;
    const std::size_t length = in[at++];
    if (length == 0) break;
    if (length > 63 || at + length > in.size()) return false;
    if (!query.name.empty()) query.name += '.';
    query.name.append(in.begin() + static_cast<long>(at), in.begin() + static_cast<long>(at + length));
    at += length;
  }
  if (at + 4 > in.size()) return false;
  query.type = static_cast<std::uint16_t>(in[at] << 8 | in[at + 1]);
  query.question_end = at + 4;
  query.name = lower(query.name);
  return true;
}

Bytes header(std::uint16_t id, bool rd, bool tc, unsigned rcode, unsigned questions, unsigned answers) {
  Bytes out;
  put16(out, id);
  out.push_back(static_cast<std::uint8_t>(0x80 | (tc ? 0x02 : 0) | (rd ? 0x01 : 0)));  // QR, opcode QUERY, AA 0
  out.push_back(static_cast<std::uint8_t>(0x80 | rcode));                                 // RA
  put16(out, questions);
  put16(out, answers);
  put16(out, 0);
  put16(out, 0);
  return out;
}

Bytes rdata_of(const DnsRecord& record) {
  Bytes out;
  if (record.type == 5) {
    put_name(out, record.data);
  } else if (record.type == 1) {
    in_addr a{};
    if (::inet_pton(AF_INET, record.data.c_str(), &a) != 1) throw std::invalid_argument("bad A data " + record.data);
    const auto* b = reinterpret_cast<const std::uint8_t*>(&a);
    out.assign(b, b + 4);
  } else {
    in6_addr a{};
    if (::inet_pton(AF_INET6, record.data.c_str(), &a) != 1) throw std::invalid_argument("bad AAAA data " + record.data);
    out.assign(a.s6_addr, a.s6_addr + 16);
  }
  return out;
}

Bytes reply(const Query& query, const Bytes& in, const std::vector<DnsRecord>& records, unsigned rcode = 0,
            bool tc = false, int id_delta = 0) {
  Bytes out = header(static_cast<std::uint16_t>(query.id + id_delta), query.recursion_desired, tc, rcode, 1,
                     static_cast<unsigned>(records.size()));
  out.insert(out.end(), in.begin() + 12, in.begin() + static_cast<long>(query.question_end));
  for (const auto& record : records) {
    if (lower(record.owner) == query.name) {
      put16(out, 0xC00C);  // RFC 1035 4.1.4: a pointer to the question's name
    } else {
      put_name(out, record.owner);
    }
    put16(out, record.type);
    put16(out, 1);
    put32(out, record.ttl);
    const Bytes data = rdata_of(record);
    put16(out, static_cast<unsigned>(data.size()));
    out.insert(out.end(), data.begin(), data.end());
  }
  return out;
}

// Our ID and question, then an A record of 5 bytes.
Bytes malformed(const Query& query, const Bytes& in) {
  Bytes out = reply(query, in, {});
  out[7] = 1;  // ANCOUNT 1
  put16(out, 0xC00C);
  put16(out, 1);
  put16(out, 1);
  put32(out, 300);
  put16(out, 5);
  for (int i = 0; i < 5; ++i) out.push_back(1);
  return out;
}

// 127.0.0.1 or ::1 at `port` in `storage`; returns the address's size.
socklen_t loopback_address(bool ipv6, std::uint16_t port, sockaddr_storage& storage) {
  storage = {};
  if (ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_addr.s6_addr[15] = 1;  // ::1
    a->sin6_port = htons(port);
    return sizeof *a;
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&storage);
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a->sin_port = htons(port);
  return sizeof *a;
}

int bind_udp(bool ipv6, std::uint16_t& port) {
  const int fd = open_socket(ipv6 ? AF_INET6 : AF_INET, SOCK_DGRAM);
  if (fd < 0) return -1;
  sockaddr_storage storage{};
  socklen_t size = loopback_address(ipv6, 0, storage);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), size) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &size) != 0) {
    close_socket(fd);
    return -1;
  }
  port = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  set_receive_timeout(fd, std::chrono::milliseconds(100));  // the serving loop checks for shutdown this often
  return fd;
}

}  // namespace

bool DnsTestServer::listen_tcp(bool ipv6) {
  tcp_fd_ = open_socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM);
  sockaddr_storage storage{};
  const socklen_t size = loopback_address(ipv6, port_, storage);
  if (tcp_fd_ >= 0 && ::bind(tcp_fd_, reinterpret_cast<sockaddr*>(&storage), size) == 0 && ::listen(tcp_fd_, 8) == 0)
    return true;
  if (tcp_fd_ >= 0) close_socket(tcp_fd_);
  tcp_fd_ = -1;
  return false;
}

DnsTestServer::DnsTestServer(bool ipv6, bool tcp) : ipv6_(ipv6) {
  // The kernel picks a free UDP port; the same TCP port may be in use (an ephemeral port of
  // another connection), so a few tries, each with a new UDP port.
  constexpr int kTries = 20;
  for (int attempt = 0; attempt < kTries; ++attempt) {
    fd_ = bind_udp(ipv6, port_);
    if (fd_ < 0) {
      if (ipv6) return;  // ok() says so; the test skips
      throw std::runtime_error("cannot bind a loopback UDP port");
    }
    if (!tcp || listen_tcp(ipv6)) break;
    close_socket(fd_);
    fd_ = -1;
  }
  if (fd_ < 0) throw std::runtime_error("no loopback port free for both UDP and TCP in " + std::to_string(kTries) + " tries");
  std::uint16_t forger_port = 0;
  forger_fd_ = bind_udp(ipv6, forger_port);
  thread_ = std::thread([this] { serve(); });
}

DnsTestServer::~DnsTestServer() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) close_socket(fd_);
  if (forger_fd_ >= 0) close_socket(forger_fd_);
  if (tcp_fd_ >= 0) close_socket(tcp_fd_);
}

std::string DnsTestServer::address() const {
  return (ipv6_ ? "[::1]:" : "127.0.0.1:") + std::to_string(port_);
}

void DnsTestServer::set(const std::string& name, std::uint16_t type, DnsResponse response) {
  std::lock_guard lock(mutex_);
  table_[{lower(name), type}] = std::move(response);
}

std::vector<std::uint8_t> DnsTestServer::last_query() const {
  std::lock_guard lock(mutex_);
  return last_query_;
}

DnsResponse DnsTestServer::lookup(const std::string& name, std::uint16_t type) const {
  bool known_name = false;
  for (const auto& [key, value] : table_) {
    if (key.first != name) continue;
    if (key.second == type) return value;
    known_name = true;
  }
  return known_name ? DnsResponse{} : DnsResponse{DnsBehaviour::nxdomain, {}};
}

void DnsTestServer::serve() {
  while (!stopping_) {
    pollfd fds[2] = {poll_entry(fd_, POLLIN), poll_entry(tcp_fd_, POLLIN)};
    if (poll_sockets(fds, tcp_fd_ >= 0 ? 2 : 1, 100) <= 0) continue;  // 100 ms: how often shutdown is noticed
    if (tcp_fd_ >= 0 && (fds[1].revents & POLLIN)) serve_tcp();
    if (!(fds[0].revents & POLLIN)) continue;
    Bytes in(4096);
    sockaddr_storage from{};
    socklen_t from_size = sizeof from;
    const long got = recv_from(fd_, in.data(), in.size(), reinterpret_cast<sockaddr*>(&from), &from_size);
    if (got <= 0) continue;
    in.resize(static_cast<std::size_t>(got));
    Query query;
    if (!parse_query(in, query)) continue;
    DnsResponse response;
    {
      std::lock_guard lock(mutex_);
      last_query_ = in;
      response = lookup(query.name, query.type);
    }
    ++queries_;
    auto send = [&](int fd, const Bytes& out) {
      send_to(fd, out.data(), out.size(), reinterpret_cast<sockaddr*>(&from), from_size);
    };
    switch (response.behaviour) {
      case DnsBehaviour::answer: send(fd_, reply(query, in, response.records)); break;
      case DnsBehaviour::nxdomain: send(fd_, reply(query, in, {}, 3)); break;
      case DnsBehaviour::servfail: send(fd_, reply(query, in, {}, 2)); break;
      case DnsBehaviour::refused: send(fd_, header(query.id, query.recursion_desired, false, 5, 0, 0)); break;
      case DnsBehaviour::silence: break;
      case DnsBehaviour::garbage: {
        const std::string text = "this is not a DNS message, just bytes";
        send(fd_, Bytes(text.begin(), text.end()));
        break;
      }
      case DnsBehaviour::wrong_id_first:
        send(fd_, reply(query, in, {{query.name, query.type, query.type == 1 ? "203.0.113.77" : "2001:db8::77"}}, 0, false, 1));
        send(fd_, reply(query, in, response.records));
        break;
      case DnsBehaviour::forged_first:
        if (forger_fd_ >= 0)
          send(forger_fd_, reply(query, in, {{query.name, query.type, query.type == 1 ? "203.0.113.66" : "2001:db8::66"}}));
        send(fd_, reply(query, in, response.records));
        break;
      case DnsBehaviour::truncated: send(fd_, reply(query, in, {}, 0, true)); break;
      case DnsBehaviour::malformed: send(fd_, malformed(query, in)); break;
    }
  }
}

// One query on one connection (RFC 1035 4.2.2): two length bytes, the message; answered the
// same way, then closed. Reads are bounded by a receive timeout and the 64 KiB length.
void DnsTestServer::serve_tcp() {
  const int fd = accept_socket(tcp_fd_);
  if (fd < 0) return;
  set_receive_timeout(fd, std::chrono::seconds(2));
  auto read_exactly = [&](Bytes& into) {
    std::size_t have = 0;
    while (have < into.size()) {
      const long got = recv_bytes(fd, into.data() + have, into.size() - have);
      if (got <= 0) return false;
      have += static_cast<std::size_t>(got);
    }
    return true;
  };
  Bytes length(2);
  Query query;
  if (read_exactly(length)) {
    Bytes in(static_cast<std::size_t>(length[0] << 8 | length[1]));
    if (read_exactly(in) && parse_query(in, query)) {
      DnsResponse response;
      {
        std::lock_guard lock(mutex_);
        last_query_ = in;
        response = lookup(query.name, query.type);
      }
      ++queries_;
      ++tcp_queries_;
      Bytes out;
      switch (response.behaviour) {
        case DnsBehaviour::answer:
        case DnsBehaviour::truncated:
        case DnsBehaviour::wrong_id_first:
        case DnsBehaviour::forged_first: out = reply(query, in, response.records); break;
        case DnsBehaviour::nxdomain: out = reply(query, in, {}, 3); break;
        case DnsBehaviour::servfail: out = reply(query, in, {}, 2); break;
        case DnsBehaviour::malformed: out = malformed(query, in); break;
        default: break;
      }
      if (!out.empty()) {
        Bytes framed;
        framed.push_back(static_cast<std::uint8_t>(out.size() >> 8));
        framed.push_back(static_cast<std::uint8_t>(out.size() & 0xff));
        for (const auto byte : out) framed.push_back(byte);
        send_bytes(fd, framed.data(), framed.size());
      }
    }
  }
  close_socket(fd);
}

}  // namespace connectivity::testing
