// The CA certificates a TLS check trusts when it names no ca_file: the system's. On Linux those
// are OpenSSL's default verify paths (Debian's /etc/ssl/certs); on Windows, whose OpenSSL has no
// such files, the certificates of the Windows "ROOT" system store, read through CryptoAPI.
#pragma once

typedef struct ssl_ctx_st SSL_CTX;  // as <openssl/types.h> declares it

namespace connectivity {

// Makes `context` trust the system's CA certificates. Returns false, the reason in OpenSSL's
// error queue, when they cannot be loaded. Thread-safe.
bool trust_system_roots(SSL_CTX* context);

// Has the next trust_system_roots read the system's certificates again: called when the config
// is (re)loaded, so a root added to the system since applies with it. On Linux, where every
// context reads the default verify paths itself, it has nothing to do. Thread-safe.
void reload_system_roots();

}  // namespace connectivity
