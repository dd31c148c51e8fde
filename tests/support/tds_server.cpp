#include "tests/support/tds_server.h"

#include "tests/support/loopback.h"
#include "tests/support/sockets.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <stdexcept>

namespace connectivity::testing {

namespace {

constexpr std::size_t kHeader = 8;
constexpr std::size_t kPacketSize = 4096;

void put_be16(Bytes& out, std::size_t value) {
  out.push_back(static_cast<std::uint8_t>((value >> 8) & 0xff));
  out.push_back(static_cast<std::uint8_t>(value & 0xff));
}

// Packets of `type` carrying `data`, split at 4096 bytes, as the server side sends them. Written
// apart from the probe's own framing so that a framing bug cannot hide on both sides.
Bytes frame(std::uint8_t type, const Bytes& data) {
  Bytes out;
  std::size_t at = 0;
  std::uint8_t id = 1;
  do {
    const std::size_t size = std::min(kPacketSize - kHeader, data.size() - at);
    const bool last = at + size == data.size();
    out.insert(out.end(), {type, static_cast<std::uint8_t>(last ? 1 : 0)});
    put_be16(out, size + kHeader);
    out.insert(out.end(), {0, 0, id++, 0});
    out.insert(out.end(), data.begin() + static_cast<long>(at), data.begin() + static_cast<long>(at + size));
    at += size;
  } while (at < data.size());
  return out;
}

// One accepted connection, plain or under a TLS session run straight on the socket.
struct Connection {
  int fd;
  SSL* ssl = nullptr;

  bool read_exact(std::uint8_t* data, std::size_t size) const {
    while (size > 0) {
      const long got = ssl ? SSL_read(ssl, data, static_cast<int>(size)) : recv_bytes(fd, data, size);
      if (got <= 0) return false;
      data += got;
      size -= static_cast<std::size_t>(got);
    }
    return true;
  }
  bool write_all(const Bytes& bytes) const {
    std::size_t at = 0;
    while (at < bytes.size()) {
      const long sent = ssl ? SSL_write(ssl, bytes.data() + at, static_cast<int>(bytes.size() - at))
                            : send_bytes(fd, bytes.data() + at, bytes.size() - at);
      if (sent <= 0) return false;
      at += static_cast<std::size_t>(sent);
    }
    return true;
  }
  // One packet, header included; empty when the connection ended or the header is not TDS.
  Bytes read_packet() const {
    Bytes packet(kHeader);
    if (!read_exact(packet.data(), kHeader)) return {};
    const std::size_t length = (static_cast<std::size_t>(packet[2]) << 8) | packet[3];
    if (length < kHeader) return {};
    packet.resize(length);
    if (!read_exact(packet.data() + kHeader, length - kHeader)) return {};
    return packet;
  }
};

using Context = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
using Session = std::unique_ptr<SSL, decltype(&SSL_free)>;

Context server_context(const CertFiles& cert) {
  Context context(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  const std::string& chain = cert.chain.empty() ? cert.cert : cert.chain;
  if (!context || SSL_CTX_use_certificate_chain_file(context.get(), chain.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(context.get(), cert.key.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("TdsTestServer: cannot load the test certificate");
  return context;
}

int select_tds8(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_size, const unsigned char* in,
                unsigned in_size, void* arg) {
  auto& offered = *static_cast<std::string*>(arg);
  bool tds8 = false;
  for (unsigned at = 0; at < in_size;) {
    const unsigned size = in[at];
    const std::string protocol(reinterpret_cast<const char*>(in + at + 1), std::min(size, in_size - at - 1));
    offered += (offered.empty() ? "" : ",") + protocol;
    if (protocol == "tds/8.0") {
      *out = in + at + 1;
      *out_size = static_cast<unsigned char>(size);
      tds8 = true;
    }
    at += size + 1;
  }
  return tds8 ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_NOACK;
}

// The server side of the TDS 7.x handshake: records travel as PRELOGIN packet payloads.
bool wrapped_handshake(const Connection& connection, SSL_CTX* context, std::uint8_t packet_type) {
  Session ssl(SSL_new(context), SSL_free);
  BIO* from_client = BIO_new(BIO_s_mem());
  BIO* to_client = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), from_client, to_client);
  SSL_set_accept_state(ssl.get());
  for (int exchange = 0; exchange < 64; ++exchange) {
    const Bytes packet = connection.read_packet();
    if (packet.empty() || packet[0] != 0x12) return false;
    BIO_write(from_client, packet.data() + kHeader, static_cast<int>(packet.size() - kHeader));
    const int done = SSL_do_handshake(ssl.get());
    Bytes records(BIO_ctrl_pending(to_client));
    if (!records.empty()) {
      BIO_read(to_client, records.data(), static_cast<int>(records.size()));
      if (!connection.write_all(frame(packet_type, records))) return false;
    }
    if (done == 1) return true;
    if (SSL_get_error(ssl.get(), done) != SSL_ERROR_WANT_READ) return false;
  }
  return false;
}

void wait_for_close(const Connection& connection, const std::atomic<bool>& stopping) {
  std::uint8_t sink[512];
  for (int waits = 0; waits < 100 && !stopping; ++waits) {  // up to 100 receive timeouts of 100 ms
    const long got = connection.ssl ? SSL_read(connection.ssl, sink, sizeof sink) : recv_bytes(connection.fd, sink, sizeof sink);
    if (got == 0) return;
    if (got < 0 && !would_block(socket_error())) return;
  }
}

}  // namespace

Bytes tds_packet(std::uint8_t type, const Bytes& payload, int length) {
  Bytes out;
  out.reserve(payload.size() + kHeader);
  out.push_back(type);
  out.push_back(0x01);
  put_be16(out, length < 0 ? payload.size() + kHeader : static_cast<std::size_t>(length));
  out.insert(out.end(), {0, 0, 1, 0});
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Bytes PreloginAnswer::payload() const {
  // Five entries of 5 bytes and the terminator: data starts at 26.
  Bytes out = {0x00, 0, 26, 0, 6,   // VERSION
               0x01, 0, 32, 0, 1,   // ENCRYPTION
               0x02, 0, 33, 0, 1,   // INSTOPT
               0x03, 0, 34, 0, 0,   // THREADID, empty in a server's answer
               0x04, 0, 34, 0, 1,   // MARS
               0xff};
  // push_back rather than insert({...}): gcc 12 at -O3 (the Windows Release build) takes the
  // insert into the full table for an out-of-bounds copy (-Warray-bounds, a false positive).
  out.push_back(major);
  out.push_back(minor);
  put_be16(out, build);
  put_be16(out, sub_build);
  out.push_back(encryption);
  out.push_back(instance);
  out.push_back(mars);
  return out;
}

Bytes PreloginAnswer::packet() const { return tds_packet(0x04, payload()); }

TdsTestServer::TdsTestServer(TdsScript script) : script_(std::move(script)) {
  const auto bound = bind_loopback(SOCK_STREAM);
  listen_fd_ = bound.fd;
  port_ = bound.port;
  if (::listen(listen_fd_, 16) != 0) throw std::runtime_error("listen failed");
  thread_ = std::thread([this] { serve(); });
}

TdsTestServer::~TdsTestServer() {
  stopping_ = true;
  shutdown_socket(listen_fd_);  // wakes the wait for a connection at once where it can (Linux)
  if (const int fd = client_fd_.load(); fd >= 0) shutdown_socket(fd);
  thread_.join();
  close_socket(listen_fd_);
}

Bytes TdsTestServer::received_prelogin() const {
  std::lock_guard lock(mutex_);
  return received_;
}

std::string TdsTestServer::alpn_offered() const {
  std::lock_guard lock(mutex_);
  return alpn_;
}

bool TdsTestServer::wait_served(std::uint64_t count) const {
  std::unique_lock lock(mutex_);
  return served_changed_.wait_for(lock, std::chrono::seconds(5), [&] { return served_ >= count; });
}

void TdsTestServer::serve() {
  while (!stopping_) {
    // Bounded waits: Winsock's shutdown() of a listening socket does not wake a blocked accept().
    if (!wait_readable(listen_fd_, 100)) continue;
    const int fd = accept_socket(listen_fd_);
    if (fd < 0) continue;  // the loop ends once stopping_ is set
    ++accepted_;
    client_fd_ = fd;
    serve_one(fd);
    client_fd_ = -1;
    close_socket(fd);
    {
      std::lock_guard lock(mutex_);
      ++served_;
    }
    served_changed_.notify_all();
  }
}

void TdsTestServer::serve_one(int fd) {
  // The receive timeout only paces wait_for_close; the exchanges themselves get 5 s.
  set_receive_timeout(fd, std::chrono::milliseconds(5000));
  Connection connection{fd};
  Context context(nullptr, SSL_CTX_free);
  Session strict(nullptr, SSL_free);
  std::string offered;
  if (script_.tls != TdsTls::none) context = server_context(script_.cert);
  if (script_.tls == TdsTls::strict) {
    SSL_CTX_set_alpn_select_cb(context.get(), select_tds8, &offered);
    strict.reset(SSL_new(context.get()));
    SSL_set_fd(strict.get(), fd);
    const bool accepted = SSL_accept(strict.get()) == 1;
    {
      std::lock_guard lock(mutex_);
      alpn_ = offered;
    }
    if (!accepted) return;
    connection.ssl = strict.get();
  }

  Bytes request;
  for (int packets = 0; packets < 16; ++packets) {
    const Bytes packet = connection.read_packet();
    request.insert(request.end(), packet.begin(), packet.end());
    if (packet.empty() || (packet[1] & 0x01) != 0) break;
  }
  {
    std::lock_guard lock(mutex_);
    received_ = request;
  }
  if (request.empty() || !connection.write_all(script_.reply)) return;
  if (script_.tls == TdsTls::wrapped && wrapped_handshake(connection, context.get(), script_.handshake_packet_type))
    ++handshakes_;
  if (script_.tls == TdsTls::strict) ++handshakes_;
  set_receive_timeout(fd, std::chrono::milliseconds(100));
  if (script_.hold_open || script_.tls == TdsTls::wrapped) wait_for_close(connection, stopping_);
}

BrowserTestResponder::BrowserTestResponder(Bytes reply) : reply_(std::move(reply)) {
  const auto bound = bind_loopback(SOCK_DGRAM);
  fd_ = bound.fd;
  port_ = bound.port;
  set_receive_timeout(fd_, std::chrono::milliseconds(100));
  thread_ = std::thread([this] {
    while (!stopping_) {
      std::uint8_t query[2048];
      sockaddr_in from{};
      socklen_t from_size = sizeof from;
      // On Windows a failed earlier send can report here as WSAECONNRESET: ignored like a timeout.
      const long got = recv_from(fd_, query, sizeof query, reinterpret_cast<sockaddr*>(&from), &from_size);
      if (got <= 0) continue;
      {
        std::lock_guard lock(mutex_);
        query_.assign(query, query + got);
      }
      send_to(fd_, reply_.data(), reply_.size(), reinterpret_cast<sockaddr*>(&from), from_size);
    }
  });
}

BrowserTestResponder::~BrowserTestResponder() {
  stopping_ = true;
  thread_.join();
  close_socket(fd_);
}

Bytes BrowserTestResponder::last_query() const {
  std::lock_guard lock(mutex_);
  return query_;
}

Bytes browser_reply(const std::string& text) {
  Bytes out;
  out.reserve(text.size() + 3);
  out.push_back(0x05);
  out.push_back(static_cast<std::uint8_t>(text.size() & 0xff));
  out.push_back(static_cast<std::uint8_t>(text.size() >> 8));
  for (const char c : text) out.push_back(static_cast<std::uint8_t>(c));
  return out;
}

}  // namespace connectivity::testing
