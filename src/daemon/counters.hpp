// The host XDP program's counters per service IP of a config, read from the maps a running
// daemon pinned: what `xdpfwd --counters` prints.
#pragma once

#include "xdpfwd/config.hpp"
#include "xdpfwd/xdp_maps.hpp"

#include <string>
#include <vector>

namespace xdpfwd {

struct ServiceIpCounters {
  std::string ingress;
  config::IpAddress address;
  ServiceCounters counters;
};

struct Counters {
  std::vector<ServiceIpCounters> services; // in config order
  MalformedCounters malformed{};
};

// From the maps pinned in config.pin_dir.
Counters read_pinned_counters(const config::Config& config);

// One line per service IP: "waf 198.18.0.10 packets=200 bytes=14800 redirect_errors=0 malformed=0",
// then "malformed <reason>=<count>" for every reason seen.
std::string format_counters(const Counters& counters);

} // namespace xdpfwd
