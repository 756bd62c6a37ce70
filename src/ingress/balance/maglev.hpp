// Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of M entries (M
// prime) filled from one permutation of [0, M) per backend, so that a change of the backend
// set moves few keys and every backend owns close to M / N entries.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace xdpfwd::ingress::balance {

class Maglev {
public:
  static constexpr std::uint32_t kDefaultTableSize = 65537;
  // Value of the entries while no backend has a weight above 0.
  static constexpr std::uint32_t kNone = 0xffffffffU;

  struct Backend {
    std::uint64_t id = 0;     // stable across rebuilds and ingresses: fixes the permutation
    std::uint32_t weight = 1; // 0: left out of the table
    std::uint32_t value = 0;  // what lookup() returns for this backend (e.g. a replica slot)
  };

  // table_size must be a prime >= kDefaultTableSize (the paper wants M >= 100 N for
  // shares within 1 %); throws std::invalid_argument otherwise (start-up boundary).
  explicit Maglev(std::uint32_t table_size = kDefaultTableSize);

  // Refills the table. Backends are ordered by id first, so the table depends only on the
  // set, never on the order in which replicas were added. Control path: O(M * N) worst case.
  void build(std::span<const Backend> backends);

  // O(1), no division: maps the hash's upper 32 bits onto [0, M) with a multiply.
  std::uint32_t lookup(std::uint64_t hash) const noexcept {
    return table_[static_cast<std::uint32_t>(((hash >> 32) * size_) >> 32)];
  }

  std::uint32_t size() const noexcept { return size_; }
  std::span<const std::uint32_t> entries() const noexcept { return table_; }

private:
  std::uint32_t size_;
  std::vector<std::uint32_t> table_;
  // Scratch reused across builds.
  std::vector<Backend> sorted_;
  std::vector<std::uint32_t> position_;
  std::vector<std::uint32_t> skip_;
  std::vector<std::uint64_t> credit_;
};

} // namespace xdpfwd::ingress::balance
