// HTTP basic authentication against a web config's bcrypt hashes (basic_auth_users).
//
// bcrypt is slow on purpose (a cost-10 hash takes tens of milliseconds), and Prometheus sends
// the same credentials with every scrape, so a verified user/hash/password triple is remembered
// (as a SHA-256 digest, never the password) and the next scrape costs a hash lookup. A failed
// check is never remembered: an attacker's guesses cannot grow the cache, and each costs a
// bcrypt run, one at a time. A user that does not exist is checked against the costliest
// configured hash, so a wrong user name takes as long as a wrong password.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace connectivity {

class BasicAuthenticator {
 public:
  explicit BasicAuthenticator(std::map<std::string, std::string, std::less<>> users);
  ~BasicAuthenticator();
  BasicAuthenticator(const BasicAuthenticator&) = delete;
  BasicAuthenticator& operator=(const BasicAuthenticator&) = delete;

  // Whether `user` with `password` may in. Thread-safe.
  bool allows(std::string_view user, std::string_view password);
  // bcrypt runs so far: a remembered success runs none.
  std::uint64_t bcrypt_runs() const;

  // Successes remembered at most; beyond it the oldest is forgotten.
  static constexpr std::size_t kRemembered = 256;

 private:
  using Digest = std::array<unsigned char, 32>;
  struct CryptState;

  std::map<std::string, std::string, std::less<>> users_;
  std::string costliest_hash_;
  mutable std::mutex remembered_mutex_;
  std::set<Digest> remembered_;
  std::array<Digest, kRemembered> order_{};  // ring of the remembered, oldest first to go
  std::size_t next_ = 0;
  mutable std::mutex bcrypt_mutex_;  // one bcrypt at a time: guesses queue rather than take every core
  std::unique_ptr<CryptState> crypt_;
  std::uint64_t runs_ = 0;
};

// The user and password of an "Authorization: Basic ..." header value; nullopt when it is not
// one (another scheme, bad base64, no ':').
std::optional<std::pair<std::string, std::string>> parse_basic_authorization(std::string_view header);

}  // namespace connectivity
