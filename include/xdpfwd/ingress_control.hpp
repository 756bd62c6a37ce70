// The control channel between the daemon and an ingress inspector: one JSON object per line
// over a unix stream socket, each request answered by one line. The socket lives next to the
// daemon's control socket, so a restarted daemon finds the ingresses that kept running.
//   {"op":"configure","ingress":"waf","config":{...services.json...}}  -> {"ok":true}
//   {"op":"status"}                                                     -> {"ok":true,...}
//   errors                                                              -> {"ok":false,"error":"..."}
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace xdpfwd {

// A request or answer longer than this is refused (and the connection closed).
inline constexpr std::size_t kControlMessageLimit = 4 << 20;

inline std::filesystem::path ingress_control_path(const std::string& control_socket, const std::string& ingress) {
  return std::filesystem::path(control_socket).parent_path() / ("ingress-" + ingress + ".sock");
}

} // namespace xdpfwd
