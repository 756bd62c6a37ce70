#include "ingress_xdp.hpp"

#include "ingress_xsk_bpf.skel.h"
#include "xdpfwd/system_error.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

namespace xdpfwd::ingress::xsk {
namespace {

constexpr std::array<std::string_view, XDPFWD_INGRESS_COUNTERS> kCounterNames = {
    "client_redirected", "client_no_socket", "client_stack_port", "client_neighbor", "client_other",
    "overlay_reply",     "overlay_transit",  "overlay_no_socket", "overlay_local",   "overlay_other",
    "client_packet_socket", "overlay_packet_socket",
};

std::string interface_name(int ifindex) {
  char name[IF_NAMESIZE] = {};
  if (::if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr) return "ifindex " + std::to_string(ifindex);
  return name;
}

// Both attach points: libbpf then deletes the qdisc, not only the filters of one hook.
int destroy_clsact(int ifindex) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
              .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
  return bpf_tc_hook_destroy(&hook);
}

const char* mode_name(std::uint32_t mode) { return mode == XDP_FLAGS_SKB_MODE ? "generic" : "native"; }

// A map whose key and value sizes are not the ones of ingress_abi.h would be misread silently.
void check_layout(const bpf_map* map, std::size_t key_size, std::size_t value_size) {
  if (bpf_map__key_size(map) != key_size || bpf_map__value_size(map) != value_size)
    throw_errno(EPROTO, std::string("BPF map ") + bpf_map__name(map) + ": layout differs from ingress_abi.h");
}

std::array<std::uint8_t, 6> interface_mac(int ifindex) {
  const std::string name = interface_name(ifindex);
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) throw_errno("socket for SIOCGIFHWADDR");
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IF_NAMESIZE - 1);
  if (::ioctl(sock.get(), SIOCGIFHWADDR, &request) < 0) throw_errno("read the MAC of " + name);
  std::array<std::uint8_t, 6> mac{};
  std::memcpy(mac.data(), request.ifr_hwaddr.sa_data, mac.size());
  return mac;
}

} // namespace

std::string_view ingress_counter_name(int counter) {
  if (counter < 0 || counter >= XDPFWD_INGRESS_COUNTERS) return "unknown";
  return kCounterNames[static_cast<std::size_t>(counter)];
}

xdpfwd_ingress_ip_key ingress_ip_key(const boost::asio::ip::address& address) {
  xdpfwd_ingress_ip_key key{};
  const auto v6 = address.is_v4() ? boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, address.to_v4())
                                  : address.to_v6();
  const auto bytes = v6.to_bytes();
  std::memcpy(key.addr, bytes.data(), sizeof(key.addr));
  return key;
}

void IngressXdp::SkeletonDeleter::operator()(ingress_xsk_bpf* skeleton) const { ingress_xsk_bpf__destroy(skeleton); }

IngressXdp::IngressXdp() {
  skeleton_.reset(ingress_xsk_bpf__open());
  if (!skeleton_) throw_errno("open the ingress_xsk BPF object");
  check_libbpf(ingress_xsk_bpf__load(skeleton_.get()), "load the ingress_xsk BPF programs");
  auto& maps = skeleton_->maps;
  check_layout(maps.local_service_ips, sizeof(xdpfwd_ingress_ip_key), sizeof(xdpfwd_ingress_flag));
  check_layout(maps.local_overlay_ips, sizeof(xdpfwd_ingress_ip_key), sizeof(xdpfwd_ingress_flag));
  check_layout(maps.stack_tcp_ports, sizeof(std::uint16_t), sizeof(xdpfwd_ingress_flag));
  check_layout(maps.overlay_config, sizeof(std::uint32_t), sizeof(xdpfwd_ingress_overlay_config));
  check_layout(maps.counters, sizeof(std::uint32_t), sizeof(std::uint64_t));
  // No NAT range until the ingress sets one (an all-zero entry would match port 0).
  set_nat_port_range(1, 0);
}

IngressXdp::IngressXdp(IngressXdp&& other) noexcept = default;

IngressXdp& IngressXdp::operator=(IngressXdp&& other) noexcept {
  if (this != &other) {
    detach_all();
    skeleton_ = std::move(other.skeleton_);
    attachments_ = std::move(other.attachments_);
    tc_attachments_ = std::move(other.tc_attachments_);
  }
  return *this;
}

IngressXdp::~IngressXdp() { detach_all(); }

void IngressXdp::attach(int ifindex, int prog_fd, const char* prog_name, std::uint32_t mode) {
  const std::string context =
      std::string("attach ") + prog_name + " to " + interface_name(ifindex) + " in " + mode_name(mode) + " mode";
  std::uint32_t previous_id = 0;
  check_libbpf(bpf_xdp_query_id(ifindex, static_cast<int>(mode), &previous_id), context + ": query");

  bpf_prog_info info{};
  std::uint32_t info_length = sizeof(info);
  check_libbpf(bpf_obj_get_info_by_fd(prog_fd, &info, &info_length), context + ": read the program's id");
  Attachment attachment{ifindex, mode, prog_fd, info.id, prog_name, UniqueFd()};
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
  std::uint32_t flags = mode;
  if (previous_id != 0) {
    attachment.previous.reset(bpf_prog_get_fd_by_id(previous_id));
    if (!attachment.previous) throw_errno(context + ": open the attached program");
    opts.old_prog_fd = attachment.previous.get();
    flags |= XDP_FLAGS_REPLACE; // fails rather than overwrite a program attached meanwhile
  }
  check_libbpf(bpf_xdp_attach(ifindex, prog_fd, flags, &opts), context);
  spdlog::info("{}: {} attached in {} mode{}", interface_name(ifindex), prog_name, mode_name(mode),
               previous_id != 0 ? " (replacing program " + std::to_string(previous_id) + ")" : "");
  attachments_.push_back(std::move(attachment));
}

void IngressXdp::attach_client(int ifindex) {
  attach(ifindex, bpf_program__fd(skeleton_->progs.xdpfwd_ingress_client), "xdpfwd_ingress_client",
         XDP_FLAGS_DRV_MODE);
}

void IngressXdp::attach_overlay(int ifindex) {
  auto config = overlay_config();
  const auto mac = interface_mac(ifindex);
  std::memcpy(config.mac, mac.data(), mac.size());
  set_overlay_config(config);
  // Native where the driver has it: a veth (the static runtime's ovl0, a Docker overlay endpoint),
  // whose peer then segments TSO and GRO super-frames before they cross; generic XDP would take
  // them whole, larger than an AF_XDP buffer, and they would be lost. A VXLAN device has no native
  // XDP: generic, with that loss.
  const int prog_fd = bpf_program__fd(skeleton_->progs.xdpfwd_ingress_overlay);
  try {
    attach(ifindex, prog_fd, "xdpfwd_ingress_overlay", XDP_FLAGS_DRV_MODE);
  } catch (const std::system_error& error) {
    if (error.code().value() != EOPNOTSUPP) throw;
    spdlog::warn("{}: no native XDP; generic XDP loses frames larger than the MTU (TSO or GRO from replicas)",
                 interface_name(ifindex));
    attach(ifindex, prog_fd, "xdpfwd_ingress_overlay", XDP_FLAGS_SKB_MODE);
  }
}

void IngressXdp::attach_tc(int ifindex, int prog_fd, const char* prog_name) {
  const std::string context = std::string("attach ") + prog_name + " to " + interface_name(ifindex) + " (tc ingress)";
  TcAttachment attachment{ifindex, prog_name, false};
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
  const int created = bpf_tc_hook_create(&hook); // the clsact qdisc
  if (created < 0 && created != -EEXIST) check_libbpf(created, context + ": create the clsact qdisc");
  attachment.created_qdisc = created == 0;
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE, .handle = kTcHandle,
              .priority = kTcPriority);
  if (const int error = bpf_tc_attach(&hook, &opts); error < 0) {
    if (attachment.created_qdisc) destroy_clsact(ifindex);
    check_libbpf(error, context);
  }
  spdlog::info("{}: {} attached to tc ingress", interface_name(ifindex), prog_name);
  tc_attachments_.push_back(attachment);
}

void IngressXdp::attach_client_tc(int ifindex) { attach_tc(ifindex, client_tc_prog_fd(), "xdpfwd_ingress_client_tc"); }

void IngressXdp::attach_overlay_tc(int ifindex) { attach_tc(ifindex, overlay_tc_prog_fd(), "xdpfwd_ingress_overlay_tc"); }

void IngressXdp::detach_all() noexcept {
  for (const auto& attachment : tc_attachments_) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = attachment.ifindex, .attach_point = BPF_TC_INGRESS);
    // A qdisc we created goes with its filter; in one that was there, only our filter goes.
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kTcHandle, .priority = kTcPriority);
    const int error = attachment.created_qdisc ? destroy_clsact(attachment.ifindex) : bpf_tc_detach(&hook, &opts);
    if (error < 0 && error != -ENODEV && error != -ENOENT)
      spdlog::error("{}: removing {} failed: {}", interface_name(attachment.ifindex), attachment.prog_name,
                    std::strerror(-error));
  }
  tc_attachments_.clear();
  // Newest first, so that two attachments to one interface unwind in order.
  for (auto it = attachments_.rbegin(); it != attachments_.rend(); ++it) {
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = it->prog_fd);
    const int restored = it->previous ? it->previous.get() : -1;
    const int error = bpf_xdp_attach(it->ifindex, restored, it->mode | XDP_FLAGS_REPLACE, &opts);
    if (error == -ENODEV) continue; // the interface (or its netns) is gone, and our program with it
    if (error < 0)
      spdlog::error("{}: removing {} failed: {}", interface_name(it->ifindex), it->prog_name, std::strerror(-error));
    else
      spdlog::info("{}: {} {}", interface_name(it->ifindex), it->prog_name,
                   it->previous ? "replaced by the program it had replaced" : "detached");
  }
  attachments_.clear();
}

std::size_t IngressXdp::restore_removed() noexcept {
  std::size_t restored = 0;
  for (const auto& attachment : attachments_) {
    std::uint32_t id = 0;
    if (bpf_xdp_query_id(attachment.ifindex, static_cast<int>(attachment.mode), &id) < 0 || id == attachment.prog_id)
      continue;
    const std::string name = interface_name(attachment.ifindex);
    spdlog::error("{}: {} is no longer attached ({}); putting it back", name, attachment.prog_name,
                  id == 0 ? "no XDP program" : "program " + std::to_string(id) + " in its place");
    if (const int error = bpf_xdp_attach(attachment.ifindex, attachment.prog_fd, attachment.mode, nullptr); error < 0) {
      spdlog::error("{}: putting {} back failed: {}", name, attachment.prog_name, std::strerror(-error));
      continue;
    }
    ++restored;
  }
  return restored;
}

void IngressXdp::update_flag_map(int map_fd, const void* key, bool present, const std::string& what) {
  const xdpfwd_ingress_flag flag{};
  if (present) {
    if (bpf_map_update_elem(map_fd, key, &flag, BPF_ANY) < 0) throw_errno("add " + what);
  } else if (bpf_map_delete_elem(map_fd, key) < 0 && errno != ENOENT) {
    throw_errno("remove " + what);
  }
}

void IngressXdp::add_service_ip(const boost::asio::ip::address& address) {
  const auto key = ingress_ip_key(address);
  update_flag_map(bpf_map__fd(skeleton_->maps.local_service_ips), &key, true,
                  "service IP " + address.to_string() + " to local_service_ips");
}

void IngressXdp::remove_service_ip(const boost::asio::ip::address& address) {
  const auto key = ingress_ip_key(address);
  update_flag_map(bpf_map__fd(skeleton_->maps.local_service_ips), &key, false,
                  "service IP " + address.to_string() + " from local_service_ips");
}

void IngressXdp::add_overlay_ip(const boost::asio::ip::address& address) {
  const auto key = ingress_ip_key(address);
  update_flag_map(bpf_map__fd(skeleton_->maps.local_overlay_ips), &key, true,
                  "overlay address " + address.to_string() + " to local_overlay_ips");
}

void IngressXdp::remove_overlay_ip(const boost::asio::ip::address& address) {
  const auto key = ingress_ip_key(address);
  update_flag_map(bpf_map__fd(skeleton_->maps.local_overlay_ips), &key, false,
                  "overlay address " + address.to_string() + " from local_overlay_ips");
}

void IngressXdp::add_stack_tcp_port(std::uint16_t port) {
  update_flag_map(bpf_map__fd(skeleton_->maps.stack_tcp_ports), &port, true,
                  "TCP port " + std::to_string(port) + " to stack_tcp_ports");
}

void IngressXdp::remove_stack_tcp_port(std::uint16_t port) {
  update_flag_map(bpf_map__fd(skeleton_->maps.stack_tcp_ports), &port, false,
                  "TCP port " + std::to_string(port) + " from stack_tcp_ports");
}

void IngressXdp::set_nat_port_range(std::uint16_t min, std::uint16_t max) {
  auto config = overlay_config();
  config.nat_port_min = min;
  config.nat_port_max = max;
  set_overlay_config(config);
}

xdpfwd_ingress_overlay_config IngressXdp::overlay_config() const {
  const std::uint32_t key = 0;
  xdpfwd_ingress_overlay_config config{};
  if (bpf_map_lookup_elem(bpf_map__fd(skeleton_->maps.overlay_config), &key, &config) < 0)
    throw_errno("read overlay_config");
  return config;
}

void IngressXdp::set_overlay_config(const xdpfwd_ingress_overlay_config& config) {
  const std::uint32_t key = 0;
  if (bpf_map_update_elem(bpf_map__fd(skeleton_->maps.overlay_config), &key, &config, BPF_ANY) < 0)
    throw_errno("write overlay_config");
}

int IngressXdp::client_xsks_fd() const { return bpf_map__fd(skeleton_->maps.client_xsks); }
int IngressXdp::overlay_xsks_fd() const { return bpf_map__fd(skeleton_->maps.overlay_xsks); }
int IngressXdp::client_prog_fd() const { return bpf_program__fd(skeleton_->progs.xdpfwd_ingress_client); }
int IngressXdp::overlay_prog_fd() const { return bpf_program__fd(skeleton_->progs.xdpfwd_ingress_overlay); }
int IngressXdp::client_tc_prog_fd() const { return bpf_program__fd(skeleton_->progs.xdpfwd_ingress_client_tc); }
int IngressXdp::overlay_tc_prog_fd() const { return bpf_program__fd(skeleton_->progs.xdpfwd_ingress_overlay_tc); }

IngressCounters IngressXdp::counters() const {
  const int cpus = libbpf_num_possible_cpus();
  check_libbpf(cpus, "count possible CPUs");
  std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(cpus));
  IngressCounters sum{};
  const int fd = bpf_map__fd(skeleton_->maps.counters);
  for (std::uint32_t key = 0; key < sum.size(); ++key) {
    if (bpf_map_lookup_elem(fd, &key, per_cpu.data()) < 0)
      throw_errno("read counters[" + std::to_string(key) + "]");
    for (const auto value : per_cpu) sum[key] += value;
  }
  return sum;
}

} // namespace xdpfwd::ingress::xsk
