-- The benchmark's tables (loaded by bench/run before any workload).
-- items: 100,000 rows read by W2 and W3. items_w: emptied before each
-- write workload (W4, W5) and checked after it. The rows are the ones every
-- stack generates for its writes (row i: see gen_row in bench/raw.c), so
-- the first N rows of items are also the expected content of items_w.
DROP TABLE IF EXISTS items, items_w;
CREATE TABLE items (
  id INT PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(100),
  price DECIMAL(10,2),
  qty INT,
  created DATETIME,
  note TEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE items_w LIKE items;
INSERT INTO items (id, name, price, qty, created, note)
SELECT seq,
       CONCAT('item ', seq),
       CONCAT(seq % 1000, '.', LPAD(seq % 100, 2, '0')),
       seq % 50,
       CONCAT('2026-', LPAD(1 + seq % 12, 2, '0'), '-', LPAD(1 + seq % 28, 2, '0'), ' ',
              LPAD(seq % 24, 2, '0'), ':', LPAD(seq % 60, 2, '0'), ':', LPAD((seq * 7) % 60, 2, '0')),
       IF(seq % 5 = 0, NULL, CONCAT('note ', seq))
FROM seq_1_to_100000;
ANALYZE TABLE items;
