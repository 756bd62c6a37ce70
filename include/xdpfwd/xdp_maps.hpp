// C++ view of the host XDP program's maps (layouts in bpf/xdpfwd_abi.h): keys from addresses,
// per-CPU counters summed. Used by the daemon and by tests that read the pinned maps.
#pragma once

#include "xdpfwd_abi.h"

#include <boost/asio/ip/address.hpp>

#include <array>
#include <cstdint>
#include <string_view>

namespace xdpfwd {

static_assert(sizeof(xdpfwd_service_key) == 16);
static_assert(sizeof(xdpfwd_service_value) == 20);
static_assert(sizeof(xdpfwd_service_stats) == 32);

// Map names in the BPF object, and so the file names of their pins.
inline constexpr std::string_view kServicesMap = "services";
inline constexpr std::string_view kIngressDevsMap = "ingress_devs";
inline constexpr std::string_view kServiceStatsMap = "service_stats";
inline constexpr std::string_view kMalformedMap = "malformed";

// The services map key of an address: IPv4 as IPv4-mapped IPv6.
xdpfwd_service_key service_key(const boost::asio::ip::address& address);

struct ServiceCounters {
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  std::uint64_t redirect_errors = 0;
  std::uint64_t malformed = 0;
};

using MalformedCounters = std::array<std::uint64_t, XDPFWD_MALFORMED_REASONS>;

// Sums one slot of service_stats over all CPUs; throws std::system_error on failure.
ServiceCounters read_service_counters(int service_stats_fd, std::uint32_t stats_index);
MalformedCounters read_malformed_counters(int malformed_fd);
// "l2_truncated", "vlan_too_deep", ...: the names operators see.
std::string_view malformed_reason_name(int reason);

} // namespace xdpfwd
