// FAISS (Debian's libfaiss-dev) under the same measurement loop as every
// other system (bench/driver.h): IndexHNSWFlat with the same M and
// ef_construction as the others, and IndexFlat for exact search.
//
//   faiss_run build  kind=hnsw|flat base=F dim=D metric=l2|cosine [m=M efc=E] index=PATH
//   faiss_run search index=PATH queries=F truth=F dim=D settings=EF,..
//                    [nq=N k=10 truthk=100 repeats=3 threads=2]
//   faiss_run serve  index=PATH queries=F truth=F dim=D
//                    [cold_setting=64 nq=N k=10 truthk=100 threads=2]
//
// search: loads PATH, answers the first query ({"cold_s"}), then one line
// per ef (ignored by IndexFlat). serve: the same {"cold_s"} (at ef
// cold_setting), then answers commands on stdin (benchServe in driver.h)
// until the end of input.
//
// One OpenMP thread: FAISS parallelises within a batch, and the queries
// here come one at a time like an application's, so the threaded figure
// comes from our own threads. For cosine the inputs are unit vectors and
// the inner-product metric is used, which ranks exactly as cosine does.
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/index_io.h>
#include <omp.h>

#include <cstring>
#include <memory>

#include "driver.h"

static faiss::MetricType metricOf(const char *name) {
  return std::strcmp(name, "cosine") == 0 ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
}

static int build(int argc, char **argv) {
  size_t dim = benchArgInt(argc, argv, "dim", nullptr), nByte;
  const float *base = (const float *)benchReadFile(benchArg(argc, argv, "base", nullptr), &nByte);
  size_t n = nByte / (sizeof(float) * dim);
  faiss::MetricType metric = metricOf(benchArg(argc, argv, "metric", "l2"));
  std::unique_ptr<faiss::Index> index;
  if (std::strcmp(benchArg(argc, argv, "kind", nullptr), "hnsw") == 0) {
    auto *h = new faiss::IndexHNSWFlat(dim, benchArgInt(argc, argv, "m", nullptr), metric);
    h->hnsw.efConstruction = benchArgInt(argc, argv, "efc", nullptr);
    index.reset(h);
  } else {
    index.reset(new faiss::IndexFlat(dim, metric));
  }
  double t0 = benchNow();
  index->add(n, base);
  double buildS = benchNow() - t0;
  const char *path = benchArg(argc, argv, "index", nullptr);
  faiss::write_index(index.get(), path);
  std::printf("{\"build_s\": %.6f, \"rows\": %zu, \"index_bytes\": %lld}\n", buildS, n, benchFileSize(path));
  return 0;
}

struct FaissState {
  faiss::Index *index;
  faiss::SearchParametersHNSW params;
  bool hnsw;
  float dist[1024];
};

static void *stateOpen(void *sys, int) {
  auto *s = new FaissState;
  s->index = static_cast<faiss::Index *>(sys);
  s->hnsw = dynamic_cast<faiss::IndexHNSW *>(s->index) != nullptr;
  return s;
}
// FAISS 1.7.3's IndexHNSW ignores SearchParametersHNSW::efSearch, so the
// index-wide value is set too; every thread runs the same setting.
static int setting(void *, void *state, int ef) {
  auto *s = static_cast<FaissState *>(state);
  s->params.efSearch = ef;
  if (auto *h = dynamic_cast<faiss::IndexHNSW *>(s->index)) h->hnsw.efSearch = ef;
  return 0;
}
static int searchOne(void *state, const float *q, int k, int64_t *ids) {
  auto *s = static_cast<FaissState *>(state);
  s->index->search(1, q, k, s->dist, ids, s->hnsw ? &s->params : nullptr);
  int n = 0;
  while (n < k && ids[n] >= 0) n++;
  return n;
}
static void stateClose(void *state) { delete static_cast<FaissState *>(state); }

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
  std::unique_ptr<faiss::Index> index(faiss::read_index(benchArg(argc, argv, "index", nullptr)));
  BenchSystem bs = {index.get(), stateOpen, setting, searchOne, stateClose};
  {
    int64_t ids[1024];
    void *s = stateOpen(index.get(), 0);
    setting(nullptr, s, settings[0]);
    searchOne(s, q.aQuery, q.k, ids);
    stateClose(s);
  }
  std::printf("{\"cold_s\": %.4f}\n", benchNow() - t0);
  if (serve) return benchServe(&bs, &q, nThread);
  return benchSearchAll(&bs, &q, settings, nSetting, benchArgInt(argc, argv, "repeats", "3"), nThread);
}

int main(int argc, char **argv) {
  omp_set_num_threads(1);
  if (argc >= 2 && std::strcmp(argv[1], "build") == 0) return benchReportRss(build(argc, argv));
  if (argc >= 2 && std::strcmp(argv[1], "search") == 0) return benchReportRss(search(argc, argv, false));
  if (argc >= 2 && std::strcmp(argv[1], "serve") == 0) return benchReportRss(search(argc, argv, true));
  std::fprintf(stderr, "usage: %s build|search|serve NAME=VALUE...\n", argv[0]);
  return 2;
}
