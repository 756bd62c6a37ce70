#include "umem.hpp"

#include "xdpfwd/system_error.hpp"

#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <xdp/xsk.h>

#include <cstring>

namespace xdpfwd::ingress::xsk {

struct Umem::Rings {
  xsk_ring_prod fill{};
  xsk_ring_cons comp{};
  bool claimed = false;
};

namespace {

bool is_power_of_two(std::uint32_t value) { return value != 0 && (value & (value - 1)) == 0; }

} // namespace

std::shared_ptr<Umem> Umem::create(const UmemConfig& config) { return std::shared_ptr<Umem>(new Umem(config)); }

Umem::Umem(const UmemConfig& config) : config_(config), rings_(std::make_unique<Rings>()) {
  if (!is_power_of_two(config.frame_size) || !is_power_of_two(config.fill_size) || !is_power_of_two(config.comp_size) ||
      config.frame_count == 0 || config.frame_headroom >= config.frame_size)
    throw_errno(EINVAL, "UMEM configuration");

  area_size_ = std::size_t{config.frame_count} * config.frame_size;
  void* area = ::mmap(nullptr, area_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (area == MAP_FAILED) throw_errno("map " + std::to_string(area_size_) + " bytes of UMEM");
  area_ = static_cast<std::uint8_t*>(area);

  const xsk_umem_config umem_config{
      .fill_size = config.fill_size,
      .comp_size = config.comp_size,
      .frame_size = config.frame_size,
      .frame_headroom = config.frame_headroom,
      .flags = 0,
  };
  const int error = xsk_umem__create(&umem_, area_, area_size_, &rings_->fill, &rings_->comp, &umem_config);
  if (error < 0) {
    ::munmap(area_, area_size_);
    throw_errno(-error, "create a UMEM of " + std::to_string(config.frame_count) + " frames");
  }

  free_.reserve(config.frame_count);
  for (std::uint32_t i = config.frame_count; i-- > 0;) free_.push_back(std::uint64_t{i} * config.frame_size);
}

Umem::~Umem() {
  if (const int error = xsk_umem__delete(umem_); error < 0)
    spdlog::error("deleting a UMEM failed: {}", std::strerror(-error)); // sockets outlive it: a bug
  ::munmap(area_, area_size_);
}

xsk_ring_prod* Umem::unclaimed_fill() const noexcept { return rings_->claimed ? nullptr : &rings_->fill; }
xsk_ring_cons* Umem::unclaimed_comp() const noexcept { return rings_->claimed ? nullptr : &rings_->comp; }
// libxdp keeps pointing at the structs (it reads the ring addresses when the socket is deleted),
// so they stay allocated as long as the UMEM.
void Umem::claim_rings() noexcept { rings_->claimed = true; }

} // namespace xdpfwd::ingress::xsk
