-- make demo: nearest neighbours on Fashion-MNIST, brute force in SQL.
-- Runs in the sqlite3 shell against build/demo/fashion.db (see scripts/demo.sh).
.load ./vectordb
.headers on
.mode box
SELECT vec_version() AS vectordb, sqlite_version() AS sqlite,
       substr(vec_debug(), instr(vec_debug(), 'SIMD: ') + 6,
              instr(substr(vec_debug(), instr(vec_debug(), 'SIMD: ') + 6), ' ') - 1) AS simd;

.print
.print The 5 training images nearest to test image 0 (L2 over 784 pixels):
.timer on
SELECT n.id, l.name AS label,
       round(vec_distance_l2(n.embedding, (SELECT embedding FROM test WHERE id = 0)), 1) AS distance
FROM train n JOIN labels l USING (label)
ORDER BY distance LIMIT 5;
.timer off
SELECT t.id AS test_image, l.name AS true_label FROM test t JOIN labels l USING (label) WHERE t.id = 0;

.print
.print 1-nearest-neighbour classification of the first 20 test images (20 x 60,000 distances):
.timer on
-- SQLite fills the bare column n.label from the row that holds min().
WITH nearest AS (
  SELECT t.id AS test_id, t.label AS true_label, n.label AS predicted,
         min(vec_distance_l2(n.embedding, t.embedding)) AS distance
  FROM test t, train n
  WHERE t.id < 20
  GROUP BY t.id
)
SELECT count(*) AS images, sum(predicted = true_label) AS correct,
       printf('%.0f%%', 100.0 * sum(predicted = true_label) / count(*)) AS accuracy
FROM nearest;
.timer off

.print
.print Cosine distance works the same way; the 3 nearest to test image 1:
SELECT n.id, l.name AS label,
       round(vec_distance_cosine(n.embedding, (SELECT embedding FROM test WHERE id = 1)), 4) AS cosine_distance
FROM train n JOIN labels l USING (label)
ORDER BY cosine_distance LIMIT 3;
