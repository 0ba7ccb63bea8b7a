-- Shared by every query (loaded once into each DuckDB database): how a score is judged against its cut lines.
CREATE OR REPLACE MACRO verdict(name, value, lower, upper, description) AS
    CASE
        WHEN lower IS NOT NULL AND value < lower
            THEN printf('%s %.4g < %.4g (%s)', name, value, lower, description)
        WHEN upper IS NOT NULL AND value > upper
            THEN printf('%s %.4g > %.4g (%s)', name, value, upper, description)
    END;
-- The pool of the dataset card: every input video that was decodable and not a duplicate.
CREATE OR REPLACE MACRO in_pool(status, stage) AS
    NOT (status = 'failed' AND stage = 'probe') AND NOT (status = 'dropped' AND stage = 'dedup');
-- A content rule's verdict, led by what it means ('too dark: brightness 18.2 < 30 (range 30-225)').
CREATE OR REPLACE MACRO content_verdict(name, value, lower, upper, description, below, above) AS
    CASE
        WHEN lower IS NOT NULL AND value < lower THEN below || ': ' || verdict(name, value, lower, upper, description)
        WHEN upper IS NOT NULL AND value > upper THEN above || ': ' || verdict(name, value, lower, upper, description)
    END;
