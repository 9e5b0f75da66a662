// hnswlib (Debian's libhnswlib-dev, header-only) under the same measurement
// loop as every other system (bench/driver.h).
//
//   hnswlib_run build  base=F dim=D metric=l2|cosine m=M efc=E index=PATH [threads=1]
//   hnswlib_run search index=PATH queries=F truth=F dim=D metric=.. settings=EF,..
//                      [nq=N k=10 truthk=100 repeats=3 threads=2]
//   hnswlib_run serve  index=PATH queries=F truth=F dim=D metric=..
//                      [cold_setting=64 nq=N k=10 truthk=100 threads=2]
//
// build: adds every base vector (id = row number), on one thread or, with
// threads=N, on N threads each taking the next row (hnswlib's addPoint is
// thread-safe; its own examples build this way), saves the index to PATH
// and prints {"build_s", "rows", "index_bytes", "threads"}. search: loads
// PATH, answers the first query ({"cold_s"}), then one line per ef. serve:
// the same {"cold_s"} (at ef cold_setting), then answers commands on stdin
// (benchServe in driver.h) until the end of input. For cosine the inputs
// are unit vectors and the inner-product space is used, which ranks
// exactly as cosine distance does.
#include <hnswlib/hnswlib.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "driver.h"

static hnswlib::SpaceInterface<float> *makeSpace(const char *metric, size_t dim) {
  if (std::strcmp(metric, "cosine") == 0) return new hnswlib::InnerProductSpace(dim);
  return new hnswlib::L2Space(dim);
}

static int build(int argc, char **argv) {
  size_t dim = benchArgInt(argc, argv, "dim", nullptr), nByte;
  const float *base = (const float *)benchReadFile(benchArg(argc, argv, "base", nullptr), &nByte);
  size_t n = nByte / (sizeof(float) * dim);
  std::unique_ptr<hnswlib::SpaceInterface<float>> space(makeSpace(benchArg(argc, argv, "metric", "l2"), dim));
  hnswlib::HierarchicalNSW<float> index(space.get(), n, benchArgInt(argc, argv, "m", nullptr),
                                        benchArgInt(argc, argv, "efc", nullptr), 100);
  int nThread = benchArgInt(argc, argv, "threads", "1");
  double t0 = benchNow();
  if (nThread <= 1) {
    for (size_t i = 0; i < n; i++) index.addPoint(base + i * dim, i);
  } else {
    std::atomic<size_t> next(0);
    std::vector<std::thread> workers;
    for (int t = 0; t < nThread; t++) {
      workers.emplace_back([&]() {
        for (size_t i; (i = next.fetch_add(1)) < n;) index.addPoint(base + i * dim, i);
      });
    }
    for (auto &w : workers) w.join();
  }
  double buildS = benchNow() - t0;
  const char *path = benchArg(argc, argv, "index", nullptr);
  index.saveIndex(path);
  std::printf("{\"build_s\": %.6f, \"rows\": %zu, \"index_bytes\": %lld, \"threads\": %d}\n", buildS, n,
              benchFileSize(path), nThread < 1 ? 1 : nThread);
  return 0;
}

struct HnswSys {
  hnswlib::HierarchicalNSW<float> *index;
};

static void *stateOpen(void *sys, int) { return sys; }
static int setting(void *sys, void *, int ef) {
  static_cast<HnswSys *>(sys)->index->setEf(ef);
  return 0;
}
static int searchOne(void *state, const float *q, int k, int64_t *ids) {
  auto res = static_cast<HnswSys *>(state)->index->searchKnn(q, k);
  int n = (int)res.size();
  for (int i = n - 1; i >= 0; i--) {  // the queue pops the farthest first
    ids[i] = (int64_t)res.top().second;
    res.pop();
  }
  return n;
}
static void stateClose(void *) {}

// Modes search (serve false) and serve: everything but the timed loop is shared.
static int search(int argc, char **argv, bool serve) {
  int dim = benchArgInt(argc, argv, "dim", nullptr);
  int nThread = benchArgInt(argc, argv, "threads", "2");
  int settings[64];
  int nSetting = 0;
  if (serve)
    settings[0] = benchArgInt(argc, argv, "cold_setting", "64");
  else
    nSetting = benchIntList(benchArg(argc, argv, "settings", nullptr), settings, 64);
  BenchQueries q;
  benchLoadQueries(argc, argv, &q, dim);
  double t0 = benchNow();
  std::unique_ptr<hnswlib::SpaceInterface<float>> space(makeSpace(benchArg(argc, argv, "metric", "l2"), dim));
  hnswlib::HierarchicalNSW<float> index(space.get(), benchArg(argc, argv, "index", nullptr));
  HnswSys sys{&index};
  int64_t ids[1024];
  setting(&sys, nullptr, settings[0]);
  searchOne(&sys, q.aQuery, q.k, ids);
  std::printf("{\"cold_s\": %.4f}\n", benchNow() - t0);
  BenchSystem bs = {&sys, stateOpen, setting, searchOne, stateClose};
  if (serve) return benchServe(&bs, &q, nThread);
  return benchSearchAll(&bs, &q, settings, nSetting, benchArgInt(argc, argv, "repeats", "3"), nThread);
}

int main(int argc, char **argv) {
  if (argc >= 2 && std::strcmp(argv[1], "build") == 0) return benchReportRss(build(argc, argv));
  if (argc >= 2 && std::strcmp(argv[1], "search") == 0) return benchReportRss(search(argc, argv, false));
  if (argc >= 2 && std::strcmp(argv[1], "serve") == 0) return benchReportRss(search(argc, argv, true));
  std::fprintf(stderr, "usage: %s build|search|serve NAME=VALUE...\n", argv[0]);
  return 2;
}
