// The packet memory of AF_XDP sockets (UMEM): frame_count frames of frame_size bytes in one
// anonymous mapping, plus the stack of free frames. One UMEM may serve several sockets, on
// different interfaces (XDP_SHARED_UMEM; each socket then has fill and completion rings of its
// own), so a frame received on one socket can be transmitted on another without a copy.
//
// Frame ownership: a frame is either in the free stack, in a kernel ring (fill, rx, tx,
// completion) of a socket, or held by the caller between XskSocket::receive / Umem::allocate and
// XskSocket::transmit / Umem::release. Single-threaded: one thread owns a UMEM and its sockets.
// Nothing here allocates after creation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

struct xsk_umem;
struct xsk_ring_prod;
struct xsk_ring_cons;

namespace xdpfwd::ingress::xsk {

struct UmemConfig {
  std::uint32_t frame_count = 8192;
  std::uint32_t frame_size = 4096; // a power of two, 2048 to the page size
  std::uint32_t frame_headroom = 0; // bytes the kernel leaves free before received data
  // Ring sizes (powers of two) of every socket of this UMEM: the fill ring is kept as full as the
  // free frames allow, so frame_count should exceed sockets x fill_size by what is in flight.
  std::uint32_t fill_size = 2048;
  std::uint32_t comp_size = 2048;
};

class Umem {
public:
  static constexpr std::uint64_t kNoFrame = ~std::uint64_t{0};

  // Throws std::system_error. Shared: every XskSocket of this UMEM holds a reference, so the
  // UMEM outlives its sockets.
  static std::shared_ptr<Umem> create(const UmemConfig& config = {});
  Umem(const Umem&) = delete;
  Umem& operator=(const Umem&) = delete;
  ~Umem();

  // Address (offset in the UMEM) -> bytes. Valid for any address inside a frame.
  std::uint8_t* data(std::uint64_t addr) const noexcept { return area_ + addr; }
  std::uint64_t frame_base(std::uint64_t addr) const noexcept { return addr & ~std::uint64_t{config_.frame_size - 1}; }
  const UmemConfig& config() const noexcept { return config_; }

  // A free frame for the caller to build a packet in (its base address), or kNoFrame.
  std::uint64_t allocate() noexcept {
    if (free_.empty()) return kNoFrame;
    const std::uint64_t addr = free_.back();
    free_.pop_back();
    return addr;
  }
  // Gives a frame back (any address inside it).
  void release(std::uint64_t addr) noexcept { free_.push_back(frame_base(addr)); }
  std::size_t free_frames() const noexcept { return free_.size(); }

  xsk_umem* raw() const noexcept { return umem_; }

private:
  struct Rings; // the fill and completion rings xsk_umem__create maps, handed to the first socket
  // The UMEM's own ring structs while no socket has taken them over, else null (XskSocket).
  xsk_ring_prod* unclaimed_fill() const noexcept;
  xsk_ring_cons* unclaimed_comp() const noexcept;
  void claim_rings() noexcept;
  explicit Umem(const UmemConfig& config);

  UmemConfig config_;
  std::uint8_t* area_ = nullptr;
  std::size_t area_size_ = 0;
  xsk_umem* umem_ = nullptr;
  std::unique_ptr<Rings> rings_;
  std::vector<std::uint64_t> free_;

  friend class XskSocket;
};

} // namespace xdpfwd::ingress::xsk
