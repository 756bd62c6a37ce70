// The control channel between the daemon and an ingress inspector: one JSON object per line
// over a unix stream socket, each request answered by one line. The socket lives next to the
// daemon's control socket, so a restarted daemon finds the ingresses that kept running.
//   {"op":"configure","ingress":"waf","config":{...services.json...}}  -> {"ok":true}
//   {"op":"status"}                                                     -> {"ok":true,...}
//   errors                                                              -> {"ok":false,"error":"..."}
#pragma once

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace xdpfwd {

// A request or answer longer than this is refused (and the connection closed).
inline constexpr std::size_t kControlMessageLimit = 4 << 20;

inline std::filesystem::path ingress_control_path(const std::string& control_socket, const std::string& ingress) {
  return std::filesystem::path(control_socket).parent_path() / ("ingress-" + ingress + ".sock");
}

// The inspector's frame transport (xdpfwd-ingress --transport), chosen for every inspector by
// XDPFWD_INGRESS_TRANSPORT in the daemon's environment: its value, "" when unset or empty.
// Throws std::invalid_argument naming a value that is not auto, af_xdp or af_packet.
inline std::string ingress_transport_from_environment() {
  const char* value = std::getenv("XDPFWD_INGRESS_TRANSPORT");
  const std::string transport = value != nullptr ? value : "";
  if (!transport.empty() && transport != "auto" && transport != "af_xdp" && transport != "af_packet")
    throw std::invalid_argument("XDPFWD_INGRESS_TRANSPORT=\"" + transport + "\": expected auto, af_xdp or af_packet");
  return transport;
}

} // namespace xdpfwd
