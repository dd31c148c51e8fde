// A minimal blocking HTTP/1.1 client for tests, and a parser for the text exposition format.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace connectivity::testing {

struct HttpReply {
  int status = 0;
  std::string headers;  // the header lines, each ending in CRLF
  std::string body;
};

// `extra_headers`: more request header lines, each ending in CRLF.
inline HttpReply http_request(int port, const std::string& method, const std::string& path,
                              const std::string& extra_headers = {}) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  const std::string request = method + " " + path +
                              " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n" + extra_headers + "\r\n";
  asio::write(socket, asio::buffer(request));
  std::string raw;
  boost::system::error_code error;
  asio::read(socket, asio::dynamic_buffer(raw), error);  // until the server closes
  HttpReply reply;
  const auto space = raw.find(' ');
  if (space != std::string::npos) reply.status = std::stoi(raw.substr(space + 1, 3));
  const auto body = raw.find("\r\n\r\n");
  if (body != std::string::npos) {
    reply.body = raw.substr(body + 4);
    const auto first_line_end = raw.find("\r\n");
    reply.headers = raw.substr(first_line_end + 2, body + 2 - (first_line_end + 2));
  }
  return reply;
}

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

inline std::vector<Sample> parse_exposition(const std::string& text) {
  std::vector<Sample> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    std::size_t i = line.find_first_of("{ ");
    s.name = line.substr(0, i);
    if (line[i] == '{') {
      ++i;
      while (line[i] != '}') {
        const auto eq = line.find('=', i);
        const std::string key = line.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2;  // past ="
        for (; line[j] != '"'; ++j) {
          if (line[j] == '\\') ++j;
          value += line[j];
        }
        s.labels[key] = value;
        i = j + 1;
        if (line[i] == ',') ++i;
      }
      ++i;
    }
    s.value = std::stod(line.substr(i + 1));
    out.push_back(std::move(s));
  }
  return out;
}

// The samples called `name` whose labels include all of `want`.
inline std::vector<Sample> find(const std::vector<Sample>& samples, const std::string& name,
                                const std::map<std::string, std::string>& want = {}) {
  std::vector<Sample> out;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : want) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) match = false;
    }
    if (match) out.push_back(s);
  }
  return out;
}

inline std::optional<double> value_of(const std::vector<Sample>& samples, const std::string& name,
                                      const std::map<std::string, std::string>& want = {}) {
  auto found = find(samples, name, want);
  if (found.size() != 1) return std::nullopt;
  return found[0].value;
}

}  // namespace connectivity::testing
