// Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of M entries (M
// prime) filled from one permutation of [0, M) per backend, so that a change of the backend
// set moves few keys and every backend owns close to M / N entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace xdpfwd::ingress::balance {

class Maglev {
public:
  // The smallest table accepted (and the one an automatic table has while it has no backend).
  static constexpr std::uint32_t kMinTableSize = 65537;
  // Kept for existing callers: the smallest fixed size.
  static constexpr std::uint32_t kDefaultTableSize = kMinTableSize;
  // Table size 0: chosen by build() from the number of backends (see auto_table_size()).
  static constexpr std::uint32_t kAutoTableSize = 0;
  // Value of the entries while no backend has a weight above 0.
  static constexpr std::uint32_t kNone = 0xffffffffU;

  struct Backend {
    std::uint64_t id = 0;     // stable across rebuilds and ingresses: fixes the permutation
    std::uint32_t weight = 1; // 0: left out of the table (but counted for the automatic size)
    std::uint32_t value = 0;  // what lookup() returns for this backend (e.g. a replica slot)
  };

  // The automatic size for n backends. Maglev moves more than the ideal 1/N of the keys on a
  // set change, the more so the smaller M/N (turn-taking fill; measured, adding one of N:
  // M=65537 gives 1.20/N at N=50 and 1.57/N at N=100; M=524287 gives 1.05/N at N=50,
  // 1.15/N at N=100, 1.21/N at N=127). Any change of M refills the whole table (all keys
  // move), so M must stay constant over the range of N where the bound matters: it is the
  // largest prime below 4096 * bit_ceil(max(n, 128)), capped at 2^20 entries (4 MiB), i.e.
  //   n = 0        65537    (256 KiB; nothing to be consistent with)
  //   n = 1..128   524287   (2 MiB; adding one of N moves <= 1.2/N for N up to ~120)
  //   n > 128      1048573  (4 MiB; 1.14/N at N=128, 1.25/N at N=200, 1.33/N at N=256)
  // The size depends on n alone, so ingresses with the same set build the same table.
  static std::uint32_t auto_table_size(std::size_t backends) noexcept;

  // table_size: kAutoTableSize, or a prime >= kMinTableSize (the paper wants M >= 100 N for
  // shares within 1 %); throws std::invalid_argument otherwise (start-up boundary).
  explicit Maglev(std::uint32_t table_size = kAutoTableSize);

  // Refills the table. Backends are ordered by id first, so the table depends only on the
  // set, never on the order in which replicas were added. Control path: O(M * N) worst case;
  // an automatic table is resized here (allocation) when auto_table_size(backends.size())
  // differs from its size. Pass drained and down backends with weight 0 rather than leaving
  // them out, so that health changes never resize (and thus reshuffle) an automatic table.
  void build(std::span<const Backend> backends);

  // O(1), no division: maps the hash's upper 32 bits onto [0, M) with a multiply.
  std::uint32_t lookup(std::uint64_t hash) const noexcept {
    return table_[static_cast<std::uint32_t>(((hash >> 32) * size_) >> 32)];
  }

  std::uint32_t size() const noexcept { return size_; }
  bool automatic() const noexcept { return automatic_; }
  std::span<const std::uint32_t> entries() const noexcept { return table_; }

private:
  bool automatic_;
  std::uint32_t size_;
  std::vector<std::uint32_t> table_;
  // Scratch reused across builds.
  std::vector<Backend> sorted_;
  std::vector<std::uint32_t> position_;
  std::vector<std::uint32_t> skip_;
  std::vector<std::uint64_t> credit_;
};

} // namespace xdpfwd::ingress::balance
