#include "xsk_socket.hpp"

#include "xdpfwd/system_error.hpp"

#include <sys/socket.h>
#include <xdp/xsk.h>

#include <algorithm>
#include <cerrno>

namespace xdpfwd::ingress::xsk {
namespace {

// A copy-mode sendto transmits a budget of descriptors (32 by default) and reports EAGAIN when
// more are left, or when the completion ring is full; a few rounds per flush, then the next
// flush (or poll for POLLOUT) carries on.
constexpr int kMaxKicksPerFlush = 64;

} // namespace

struct XskSocket::State {
  std::shared_ptr<Umem> umem;
  xsk_socket* socket = nullptr;
  int fd = -1;
  // Ring structs must stay where libxdp saw them: State is heap-allocated and never moves.
  xsk_ring_cons rx{};
  xsk_ring_prod tx{};
  xsk_ring_prod fill{};
  xsk_ring_cons comp{};
  std::uint32_t tx_in_flight = 0;
  std::uint64_t kick_errors = 0;

  ~State() {
    if (socket != nullptr) xsk_socket__delete(socket); // the kernel removes it from the XSKMAP
  }

  // Tops the fill ring up from the free frames.
  void refill() noexcept {
    Umem& memory = *umem;
    const std::uint32_t wanted = static_cast<std::uint32_t>(
        std::min<std::size_t>(memory.free_frames(), xsk_prod_nb_free(&fill, memory.config().fill_size)));
    std::uint32_t idx = 0;
    if (wanted == 0 || xsk_ring_prod__reserve(&fill, wanted, &idx) != wanted) return;
    for (std::uint32_t i = 0; i < wanted; ++i) *xsk_ring_prod__fill_addr(&fill, idx + i) = memory.allocate();
    xsk_ring_prod__submit(&fill, wanted);
    // Zero-copy drivers may sleep on an empty fill ring; copy mode never sets the flag.
    if (xsk_ring_prod__needs_wakeup(&fill)) ::recvfrom(fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  }

  void reap_completions() noexcept {
    if (tx_in_flight == 0) return;
    std::uint32_t idx = 0;
    const std::uint32_t done = xsk_ring_cons__peek(&comp, tx_in_flight, &idx);
    for (std::uint32_t i = 0; i < done; ++i) umem->release(*xsk_ring_cons__comp_addr(&comp, idx + i));
    xsk_ring_cons__release(&comp, done);
    tx_in_flight -= done;
  }

  bool tx_pending() const noexcept {
    return tx.cached_prod != __atomic_load_n(tx.consumer, __ATOMIC_ACQUIRE);
  }

  void kick() noexcept {
    for (int round = 0; round < kMaxKicksPerFlush && tx_pending(); ++round) {
      if (!xsk_ring_prod__needs_wakeup(&tx)) return; // the driver is busy sending anyway
      if (::sendto(fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) continue;
      if (errno == EAGAIN || errno == EBUSY || errno == EINTR) {
        reap_completions(); // room in the completion ring lets the kernel go on
        continue;
      }
      ++kick_errors; // ENETDOWN, ENOBUFS, ENXIO: the frames stay queued for a later kick
      return;
    }
  }
};

XskSocket::XskSocket(std::shared_ptr<Umem> umem, const std::string& ifname, std::uint32_t queue, int xskmap_fd,
                     const XskSocketConfig& config)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.umem = std::move(umem);
  const std::string context = "create an AF_XDP socket on " + ifname + " queue " + std::to_string(queue);

  xsk_socket_config socket_config{};
  socket_config.rx_size = config.rx_size;
  socket_config.tx_size = config.tx_size;
  socket_config.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
  socket_config.xdp_flags = 0;
  socket_config.bind_flags = static_cast<std::uint16_t>((config.zero_copy ? XDP_ZEROCOPY : XDP_COPY) | XDP_USE_NEED_WAKEUP);

  // The first socket of a UMEM takes over the fill and completion rings xsk_umem__create mapped;
  // later ones get rings of their own (XDP_SHARED_UMEM). The first is created on the UMEM's own
  // ring structs: when a bind fails (EBUSY: the queue is taken) libxdp unmaps the rings if they
  // came in other structs, and xsk_umem__delete unmaps them again later, a double munmap that
  // tears down whatever was mapped there meanwhile (seen: the sanitizer's thread data).
  xsk_ring_prod* fill = s.umem->unclaimed_fill();
  xsk_ring_cons* comp = s.umem->unclaimed_comp();
  const bool first = fill != nullptr;
  if (!first) {
    fill = &s.fill;
    comp = &s.comp;
  }
  check_libbpf(xsk_socket__create_shared(&s.socket, ifname.c_str(), queue, s.umem->raw(), &s.rx, &s.tx, fill, comp,
                                         &socket_config),
               context);
  if (first) {
    s.fill = *fill;
    s.comp = *comp;
    s.umem->claim_rings();
  }
  s.fd = xsk_socket__fd(s.socket);
  if (xskmap_fd >= 0)
    check_libbpf(xsk_socket__update_xskmap(s.socket, xskmap_fd), context + ": enter it into the XSKMAP");
  s.refill();
}

XskSocket::XskSocket(XskSocket&&) noexcept = default;
XskSocket& XskSocket::operator=(XskSocket&&) noexcept = default;
XskSocket::~XskSocket() = default;

int XskSocket::fd() const noexcept { return state_->fd; }
Umem& XskSocket::umem() const noexcept { return *state_->umem; }

std::size_t XskSocket::receive(std::span<Frame> frames) noexcept {
  State& s = *state_;
  std::uint32_t idx = 0;
  const std::uint32_t got = xsk_ring_cons__peek(&s.rx, static_cast<std::uint32_t>(frames.size()), &idx);
  for (std::uint32_t i = 0; i < got; ++i) {
    const xdp_desc* desc = xsk_ring_cons__rx_desc(&s.rx, idx + i);
    frames[i] = {desc->addr, desc->len};
  }
  xsk_ring_cons__release(&s.rx, got);
  s.refill();
  return got;
}

void XskSocket::recycle(std::span<const Frame> frames) noexcept {
  for (const Frame& frame : frames) state_->umem->release(frame.addr);
}

std::size_t XskSocket::transmit(std::span<const Frame> frames) noexcept {
  State& s = *state_;
  s.reap_completions();
  const std::uint32_t count = std::min<std::uint32_t>(
      static_cast<std::uint32_t>(frames.size()), xsk_prod_nb_free(&s.tx, static_cast<std::uint32_t>(frames.size())));
  std::uint32_t idx = 0;
  if (count == 0 || xsk_ring_prod__reserve(&s.tx, count, &idx) != count) {
    s.kick();
    return 0;
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    xdp_desc* desc = xsk_ring_prod__tx_desc(&s.tx, idx + i);
    desc->addr = frames[i].addr;
    desc->len = frames[i].len;
    desc->options = 0;
  }
  xsk_ring_prod__submit(&s.tx, count);
  s.tx_in_flight += count;
  s.kick();
  return count;
}

void XskSocket::flush() noexcept {
  State& s = *state_;
  s.reap_completions();
  s.kick();
  s.refill();
}

std::uint32_t XskSocket::tx_in_flight() const noexcept { return state_->tx_in_flight; }
bool XskSocket::tx_pending() const noexcept { return state_->tx_pending(); }
std::uint64_t XskSocket::tx_kick_errors() const noexcept { return state_->kick_errors; }

xdp_statistics XskSocket::statistics() const {
  xdp_statistics stats{};
  socklen_t size = sizeof(stats);
  if (::getsockopt(state_->fd, SOL_XDP, XDP_STATISTICS, &stats, &size) < 0) throw_errno("read XDP_STATISTICS");
  return stats;
}

} // namespace xdpfwd::ingress::xsk
