#include "datapath.hpp"

#include "domain_proxy.hpp"

#include "poller.hpp"
#include "port_allocator.hpp"
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

constexpr std::size_t kBatch = 64;
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

DataPath::DataPath(const config::Ingress& ingress, const Interfaces& interfaces) {
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

  umem_ = xsk::Umem::create();
  client_ = std::make_unique<xsk::XskSocket>(umem_, interfaces.client, 0, xdp_.client_xsks_fd());
  overlay_ = std::make_unique<xsk::XskSocket>(umem_, interfaces.overlay, 0, xdp_.overlay_xsks_fd());
  neighbours_ = std::make_unique<NeighbourCache>(overlay.ifindex);
  forwarding_ = std::make_unique<Forwarding>(
      ingress, IngressLinks{mac_of(client), mac_of(overlay), overlay.mtu}, *neighbours_);
  // Sockets first, programs last: from here on frames go to user space.
  xdp_.attach_client(client.ifindex);
  xdp_.attach_overlay(overlay.ifindex);

  held_.reserve(kMaxHeld);
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) throw_errno("create the data path's eventfd");
  spdlog::info("data path up: AF_XDP on {} and {} (overlay mtu {})", interfaces.client, interfaces.overlay, overlay.mtu);
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
  status["tx_dropped"] = tx_dropped_;
  status["xdp_programs_restored"] = xdp_programs_restored_;
  status["held"] = held_.size();
  status["terminated_tcp_ports"] = stack_ports_;
  // The kernel's drops at the AF_XDP sockets: rings full (the inspector fell behind).
  for (const auto& [name, socket] : {std::pair{"client_socket", client_.get()}, std::pair{"overlay_socket", overlay_.get()}}) {
    const xdp_statistics statistics = socket->statistics();
    status[name] = {{"rx_dropped", statistics.rx_dropped},
                    {"rx_ring_full", statistics.rx_ring_full},
                    {"rx_fill_ring_empty", statistics.rx_fill_ring_empty_descs},
                    {"rx_invalid", statistics.rx_invalid_descs},
                    {"tx_invalid", statistics.tx_invalid_descs},
                    {"tx_ring_empty", statistics.tx_ring_empty_descs}};
  }
  nlohmann::json xdp = nlohmann::json::object();
  const auto counters = xdp_.counters();
  for (int counter = 0; counter < XDPFWD_INGRESS_COUNTERS; ++counter)
    xdp[std::string(xsk::ingress_counter_name(counter))] = counters[counter];
  status["xdp"] = xdp;
  return status;
}

// One batch from a socket: each frame is rewritten in place and sent on the socket its action
// names (one UMEM: no copy), or returned to the UMEM.
void DataPath::forward_batch(xsk::XskSocket& from, bool from_clients, balance::Timestamp at) {
  std::array<xsk::Frame, kBatch> frames;
  const std::size_t received = from.receive(frames);
  if (received == 0) return;
  std::array<xsk::Frame, kBatch> to_overlay, to_client, done;
  std::size_t overlay_count = 0, client_count = 0, done_count = 0;
  const std::uint32_t frame_room = umem_->config().frame_size; // bytes from a frame's start to its end
  for (std::size_t i = 0; i < received; ++i) {
    xsk::Frame& frame = frames[i];
    std::span<std::uint8_t> buffer(from.data(frame), frame_room - (frame.addr % frame_room));
    const Action action = from_clients ? forwarding_->client_frame(buffer, frame.len, at)
                                       : forwarding_->overlay_frame(buffer, frame.len, at);
    if (action == Action::ToOverlay) to_overlay[overlay_count++] = frame;
    else if (action == Action::ToClient) to_client[client_count++] = frame;
    else if (action == Action::Hold && held_.size() < kMaxHeld) held_.push_back({frame, forwarding_->held_for(), at});
    else {
      if (action == Action::Hold) forwarding_->count_drop(ForwardDrop::NoNeighbour);
      done[done_count++] = frame;
    }
  }
  auto send = [&](xsk::XskSocket& socket, std::span<const xsk::Frame> batch) {
    const std::size_t sent = socket.transmit(batch);
    tx_dropped_ += batch.size() - sent;
    socket.recycle(batch.subspan(sent));
  };
  send(*overlay_, std::span(to_overlay).first(overlay_count));
  send(*client_, std::span(to_client).first(client_count));
  from.recycle(std::span(done).first(done_count));
}

void DataPath::release_held(balance::Timestamp at, bool give_up_all) {
  std::size_t kept = 0;
  for (Held& held : held_) {
    const auto mac = give_up_all ? std::nullopt : forwarding_->replica_mac(held.ticket);
    if (mac) {
      std::memcpy(overlay_->data(held.frame), mac->data(), mac->size()); // the Ethernet destination
      if (overlay_->transmit({&held.frame, 1}) == 1) {
        forwarding_->count_sent_held();
        continue;
      }
    } else if (!give_up_all && at - held.since < kMaxHoldTime) {
      held_[kept++] = held;
      continue;
    }
    forwarding_->count_drop(ForwardDrop::NoNeighbour);
    umem_->release(held.frame.addr);
  }
  held_.resize(kept);
}

void DataPath::run() {
  xsk::Poller poller;
  const auto client_slot = poller.add(client_->fd());
  const auto overlay_slot = poller.add(overlay_->fd());
  const auto neighbour_slot = poller.add(neighbours_->fd());
  const auto wake_slot = poller.add(wake_.get());
  auto next_housekeeping = std::chrono::steady_clock::now();
  while (!stopping_) {
    poller.set_events(client_slot, client_->tx_pending() ? POLLIN | POLLOUT : POLLIN);
    poller.set_events(overlay_slot, overlay_->tx_pending() ? POLLIN | POLLOUT : POLLIN);
    poller.wait(kPollTimeout);
    if (poller.readable(wake_slot)) run_tasks();
    const auto at = now();
    if (poller.readable(neighbour_slot)) {
      neighbours_->process_events();
      forwarding_->refresh_neighbours();
      release_held(at);
    }
    if (poller.readable(client_slot)) forward_batch(*client_, true, at);
    if (poller.readable(overlay_slot)) forward_batch(*overlay_, false, at);
    client_->flush();
    overlay_->flush();
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
