#include "datapath.hpp"

#include "domain_proxy.hpp"
#include "packet_ports.hpp"
#include "poller.hpp"
#include "port_allocator.hpp"
#include "xsk_ports.hpp"
#include "xdpfwd/netlink.hpp"
#include "xdpfwd/system_error.hpp"

#include <net/if.h>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>

#include <array>
#include <chrono>
#include <cstring>

namespace xdpfwd::ingress {
namespace {

constexpr auto kPollTimeout = std::chrono::milliseconds(10);
// Idle flows are swept, and unresolved replicas asked for again, this often.
constexpr auto kHousekeepingInterval = std::chrono::milliseconds(100);
// Frames waiting for a replica's MAC: how many, and for how long (the kernel's ARP queue holds
// a few packets per neighbour for about as long as resolution takes).
constexpr std::size_t kMaxHeld = 256;
constexpr auto kMaxHoldTime = std::chrono::seconds(1);

balance::Timestamp now() {
  return std::chrono::duration_cast<balance::Timestamp>(std::chrono::steady_clock::now().time_since_epoch());
}

packet::nat::Mac mac_of(const LinkInfo& link) {
  packet::nat::Mac mac;
  std::memcpy(mac.data(), link.mac.data(), mac.size());
  return mac;
}

} // namespace

std::optional<DataPath::Transport> DataPath::parse_transport(std::string_view name) {
  if (name == "auto") return Transport::Auto;
  if (name == "af_xdp") return Transport::AfXdp;
  if (name == "af_packet") return Transport::AfPacket;
  return std::nullopt;
}

DataPath::DataPath(const config::Ingress& ingress, const Interfaces& interfaces, Transport transport) {
  Netlink netlink = Netlink::open();
  const LinkInfo client = netlink.link(interfaces.client);
  const LinkInfo overlay = netlink.link(interfaces.overlay);

  // Replies to NAT'ed flows come back to these ports (and ICMP echo ids); the kernel's own
  // sockets use ports above them (the daemon sets ip_local_port_range).
  const balance::PortRange nat_ports;
  xdp_.set_nat_port_range(nat_ports.first, nat_ports.last);
  if (ingress.overlay.address) xdp_.add_overlay_ip(ingress.overlay.address->address());
  if (ingress.overlay.address6) xdp_.add_overlay_ip(ingress.overlay.address6->address());
  sync_service_ips(ingress);
  sync_stack_ports(ingress);

  ports_ = make_ports(interfaces, client.ifindex, overlay.ifindex, transport);
  neighbours_ = std::make_unique<NeighbourCache>(overlay.ifindex);
  forwarding_ = std::make_unique<Forwarding>(
      ingress, IngressLinks{mac_of(client), mac_of(overlay), overlay.mtu}, *neighbours_);
  // Sockets first, programs last: from here on frames go to user space. With AF_PACKET the XDP
  // programs pass everything (no XSKMAP entry) and keep what a veth needs of them: frames the
  // host redirects are delivered, and the replicas' side segments its TSO super-frames.
  xdp_.attach_client(client.ifindex);
  xdp_.attach_overlay(overlay.ifindex);

  held_.reserve(kMaxHeld);
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) throw_errno("create the data path's eventfd");
  spdlog::info("data path up: {} on {} and {} (overlay mtu {})", ports_->name(), interfaces.client, interfaces.overlay,
               overlay.mtu);
}

std::unique_ptr<FramePorts> DataPath::make_ports(const Interfaces& interfaces, int client_ifindex, int overlay_ifindex,
                                                 Transport transport) {
  if (transport != Transport::AfPacket) {
    try {
      return std::make_unique<XskPorts>(xdp_, interfaces.client, interfaces.overlay);
    } catch (const std::system_error& error) {
      if (transport == Transport::AfXdp) throw;
      spdlog::warn("no AF_XDP ({}): falling back to AF_PACKET rings (a copy per frame, no zero-copy NIC mode)",
                   error.what());
    }
  }
  auto ports = std::make_unique<PacketPorts>(client_ifindex, overlay_ifindex, kMaxHeld);
  // The rings take only what these mark.
  xdp_.attach_client_tc(client_ifindex);
  xdp_.attach_overlay_tc(overlay_ifindex);
  return ports;
}

Action DataPath::handle(Side from, std::span<std::uint8_t> room, std::uint32_t& length) noexcept {
  return from == Side::Client ? forwarding_->client_frame(room, length, batch_time_)
                              : forwarding_->overlay_frame(room, length, batch_time_);
}

bool DataPath::hold(const HeldFrame& frame) noexcept {
  if (held_.size() >= kMaxHeld) {
    forwarding_->count_drop(ForwardDrop::NoNeighbour);
    return false;
  }
  held_.push_back({frame, forwarding_->held_for(), batch_time_});
  return true;
}

DataPath::~DataPath() { xdp_.detach_all(); }

void DataPath::stop() {
  stopping_ = true;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(wake_.get(), &one, sizeof(one));
}

void DataPath::post(std::function<void()> task) {
  {
    std::lock_guard lock(tasks_mutex_);
    tasks_.push_back(std::move(task));
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(wake_.get(), &one, sizeof(one));
}

void DataPath::run_tasks() {
  std::uint64_t count;
  [[maybe_unused]] auto read = ::read(wake_.get(), &count, sizeof(count));
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(tasks_mutex_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
}

void DataPath::sync_service_ips(const config::Ingress& ingress) {
  for (const auto& old : service_ips_)
    if (std::find(ingress.service_ips.begin(), ingress.service_ips.end(), old) == ingress.service_ips.end())
      xdp_.remove_service_ip(old);
  for (const auto& ip : ingress.service_ips) xdp_.add_service_ip(ip);
  service_ips_ = ingress.service_ips;
}

void DataPath::sync_stack_ports(const config::Ingress& ingress) {
  const std::vector<std::uint16_t> wanted = terminated_ports(ingress);
  for (const std::uint16_t old : stack_ports_)
    if (std::find(wanted.begin(), wanted.end(), old) == wanted.end()) xdp_.remove_stack_tcp_port(old);
  for (const std::uint16_t port : wanted) xdp_.add_stack_tcp_port(port);
  if (wanted != stack_ports_ && !wanted.empty())
    spdlog::info("TCP ports terminated by the domain proxy: {}", fmt::join(wanted, ", "));
  stack_ports_ = wanted;
}

void DataPath::configure(const config::Ingress& ingress) {
  release_held(now(), true); // their tickets name services of the old configuration
  sync_service_ips(ingress);
  sync_stack_ports(ingress);
  forwarding_->configure(ingress);
}

nlohmann::json DataPath::status() const {
  nlohmann::json status = forwarding_->status();
  status["transport"] = ports_->name();
  status.update(ports_->status());
  status["xdp_programs_restored"] = xdp_programs_restored_;
  status["held"] = held_.size();
  status["terminated_tcp_ports"] = stack_ports_;
  nlohmann::json xdp = nlohmann::json::object();
  const auto counters = xdp_.counters();
  for (int counter = 0; counter < XDPFWD_INGRESS_COUNTERS; ++counter)
    xdp[std::string(xsk::ingress_counter_name(counter))] = counters[counter];
  status["xdp"] = xdp;
  return status;
}

void DataPath::release_held(balance::Timestamp at, bool give_up_all) {
  std::size_t kept = 0;
  for (Held& held : held_) {
    const auto mac = give_up_all ? std::nullopt : forwarding_->replica_mac(held.ticket);
    if (mac) {
      if (ports_->send_held(held.frame, *mac)) {
        forwarding_->count_sent_held();
        continue;
      }
    } else if (!give_up_all && at - held.since < kMaxHoldTime) {
      held_[kept++] = held;
      continue;
    }
    forwarding_->count_drop(ForwardDrop::NoNeighbour);
    ports_->drop_held(held.frame);
  }
  held_.resize(kept);
}

void DataPath::run() {
  xsk::Poller poller;
  ports_->add_to(poller);
  const auto neighbour_slot = poller.add(neighbours_->fd());
  const auto wake_slot = poller.add(wake_.get());
  auto next_housekeeping = std::chrono::steady_clock::now();
  while (!stopping_) {
    ports_->set_events(poller);
    poller.wait(kPollTimeout);
    if (poller.readable(wake_slot)) run_tasks();
    const auto at = now();
    if (poller.readable(neighbour_slot)) {
      neighbours_->process_events();
      forwarding_->refresh_neighbours();
      release_held(at);
    }
    batch_time_ = at;
    ports_->forward(poller, *this);
    ports_->flush();
    if (std::chrono::steady_clock::now() >= next_housekeeping) {
      xdp_programs_restored_ += xdp_.restore_removed();
      forwarding_->expire(at);
      forwarding_->refresh_neighbours();
      release_held(at);
      next_housekeeping = std::chrono::steady_clock::now() + kHousekeepingInterval;
    }
  }
}

} // namespace xdpfwd::ingress
