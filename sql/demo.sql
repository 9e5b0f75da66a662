-- make demo: Fashion-MNIST (60,000 training images, 784 pixels each) in a
-- vectordb table, queried with the test images. Runs in the sqlite3 shell
-- against build/demo/fashion.db, which scripts/demo.sh prepares.
.load ./vectordb
-- Let SQLite map the file: exact scans then read pages without a system call each.
.output /dev/null
PRAGMA mmap_size = 2147418112;
.output stdout
.headers on
.mode box
SELECT vec_version() AS vectordb, sqlite_version() AS sqlite,
       substr(vec_debug(), instr(vec_debug(), 'SIMD: ') + 6,
              instr(substr(vec_debug(), instr(vec_debug(), 'SIMD: ') + 6), ' ') - 1) AS simd;

.print
.print Loading the 60,000 training images into a vectordb table with an HNSW index:
DROP TABLE IF EXISTS images;
CREATE VIRTUAL TABLE images USING vectordb(
  embedding float[784]           -- 28 x 28 pixels, L2 distance
    INDEXED BY hnsw(m=16, ef_construction=100),
  label integer,                 -- metadata: filterable inside KNN
  category text,
  +source text                   -- auxiliary: stored and returned
);
.timer on
INSERT INTO images(rowid, embedding, label, category, source)
  SELECT t.id, t.embedding, t.label, l.name, 'train/' || t.id
  FROM train t JOIN labels l USING (label);
.timer off
SELECT count(*) AS rows, count(DISTINCT category) AS categories FROM images;

.print
.print The 5 training images nearest to test image 0 (through the index):
.timer on
SELECT rowid, category, source, round(distance, 1) AS distance
FROM images
WHERE embedding MATCH (SELECT embedding FROM test WHERE id = 0) AND k = 5;
.timer off
SELECT t.id AS test_image, l.name AS true_category FROM test t JOIN labels l USING (label) WHERE t.id = 0;

.print
.print The same query, only among sandals and sneakers (the filter runs inside the search):
SELECT rowid, category, round(distance, 1) AS distance
FROM images
WHERE embedding MATCH (SELECT embedding FROM test WHERE id = 0) AND k = 3
  AND category IN ('Sandal', 'Sneaker');

.print
.print How close is the index to exact search? Top 10 of 100 test images both ways:
.timer on
WITH approx AS MATERIALIZED (
  SELECT t.id AS q, a.rowid AS r FROM test t
  JOIN images a ON a.embedding MATCH t.embedding AND a.k = 10 WHERE t.id < 100),
exact AS MATERIALIZED (
  SELECT t.id AS q, b.rowid AS r FROM test t
  JOIN images b ON b.embedding MATCH t.embedding AND b.k = 10 AND b.ef_search = 0 WHERE t.id < 100)
SELECT printf('%.3f', count(*) / 1000.0) AS "recall@10 of the index"
FROM approx JOIN exact USING (q, r);
.timer off

.print
.print 1-nearest-neighbour classification of the first 100 test images (a join: one KNN per test image):
.timer on
SELECT count(*) AS images, sum(i.label = t.label) AS correct,
       printf('%.0f%%', 100.0 * sum(i.label = t.label) / count(*)) AS accuracy
FROM test t JOIN images i ON i.embedding MATCH t.embedding AND i.k = 1
WHERE t.id < 100;
.timer off

.print
.print How many training images lie within distance 1500 of test image 1, per category (a range: exact scan):
SELECT category, count(*) AS near
FROM images
WHERE embedding MATCH (SELECT embedding FROM test WHERE id = 1) AND k = 1000 AND distance < 1500
GROUP BY category ORDER BY near DESC;
