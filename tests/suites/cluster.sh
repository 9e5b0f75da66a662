# The replicated node on dqlite (cluster/, build rules in cluster/cluster.mk):
# three vectordb-node processes on 127.0.0.1 with random free ports; a
# leader SIGKILLed under writes through HTTP and the dqlite driver; every
# acknowledged write present on every node, KNN answers unchanged,
# integrity checks on every node (each made leader in turn), the killed
# node restarted; tokens, the authorizer's refusals, the body limit.
# The harness kills every node it started on every exit path.
run_suite cluster           ./build/vectordb-clustertest -node build/vectordb-node -kills 1 -deadline 40s
