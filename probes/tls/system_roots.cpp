#include "probes/tls/system_roots.h"

#if defined(_WIN32)
// Before OpenSSL's headers: <wincrypt.h> defines X509_NAME and others as macros, which
// <openssl/types.h> undefines only when it comes second.
#include <windows.h>
#include <wincrypt.h>

#include <mutex>
#endif

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace connectivity {

#if defined(_WIN32)

namespace {

// Checks are built one by one at each (re)load, each with its own context: the store is read
// once per load and shared by them all (each context holds a reference).
std::mutex g_roots_mutex;
X509_STORE* g_roots = nullptr;  // this cache's reference; null: read at the next use

// The certificates of the "ROOT" system store, as an OpenSSL store; null when the system store
// cannot be opened. Windows may fetch a root it trusts only when a chain needs it (automatic
// root update): one not fetched yet is not in the store, and a certificate that chains to it
// is reported unknown_ca until Windows has it.
X509_STORE* read_windows_roots() {
  HCERTSTORE system_store = CertOpenSystemStoreW(0, L"ROOT");
  if (system_store == nullptr) {
    ERR_raise_data(ERR_LIB_X509, ERR_R_SYS_LIB, "CertOpenSystemStoreW(ROOT): Windows error %lu", GetLastError());
    return nullptr;
  }
  X509_STORE* store = X509_STORE_new();
  PCCERT_CONTEXT certificate = nullptr;
  while (store != nullptr && (certificate = CertEnumCertificatesInStore(system_store, certificate)) != nullptr) {
    const unsigned char* der = certificate->pbCertEncoded;
    X509* parsed = d2i_X509(nullptr, &der, static_cast<long>(certificate->cbCertEncoded));
    // One OpenSSL cannot read or take is left out, and its error with it: it is no failure of
    // the store, and would otherwise show in the next error a check's options are refused with.
    if (parsed == nullptr || X509_STORE_add_cert(store, parsed) != 1) ERR_clear_error();
    X509_free(parsed);  // the store holds its own reference
  }
  if (certificate != nullptr) CertFreeCertificateContext(certificate);  // the loop ended early
  CertCloseStore(system_store, 0);
  return store;
}

}  // namespace

bool trust_system_roots(SSL_CTX* context) {
  std::lock_guard lock(g_roots_mutex);
  if (g_roots == nullptr) g_roots = read_windows_roots();
  if (g_roots == nullptr) return false;
  SSL_CTX_set1_cert_store(context, g_roots);
  return true;
}

void reload_system_roots() {
  std::lock_guard lock(g_roots_mutex);
  X509_STORE_free(g_roots);  // the contexts made from it keep their own references
  g_roots = nullptr;
}

#else

bool trust_system_roots(SSL_CTX* context) { return SSL_CTX_set_default_verify_paths(context) == 1; }

void reload_system_roots() {}

#endif

}  // namespace connectivity
