-- Shared by every query (loaded before each one): how a score is judged against its cut lines.
CREATE OR REPLACE TEMP MACRO verdict(name, value, lower, upper, description) AS
    CASE
        WHEN lower IS NOT NULL AND value < lower
            THEN printf('%s %.4g < %.4g (%s)', name, value, lower, description)
        WHEN upper IS NOT NULL AND value > upper
            THEN printf('%s %.4g > %.4g (%s)', name, value, upper, description)
    END;
