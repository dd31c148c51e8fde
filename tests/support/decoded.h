// Reading a codec's result in a test: every codec returns std::variant<Value, Error> where the
// error carries `what`.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <variant>

namespace connectivity::testing {

// The decoded value; a test failure (naming the error) when there is none.
template <class T, class Error>
const T& decoded(const std::variant<T, Error>& result) {
  if (const auto* error = std::get_if<Error>(&result)) ADD_FAILURE() << "decode error: " << error->what;
  return std::get<T>(result);
}

// The error's text, or "<decoded>" when the input decoded.
template <class T, class Error>
std::string error_of(const std::variant<T, Error>& result) {
  const auto* error = std::get_if<Error>(&result);
  return error ? error->what : "<decoded>";
}

}  // namespace connectivity::testing
