-- Migration 0023's frozen copy of the working-time functions (the current ones: gis/dispatch/sql/worktime.sql).

CREATE OR REPLACE FUNCTION gridpatrol_work_days(p_city int, p_from date, p_to date, OUT off date[], OUT extra date[])
LANGUAGE plpgsql STABLE AS $$
-- the exceptions to "Monday to Friday" between two days: the days off and the extra working days
BEGIN
    SELECT coalesce(array_agg(x.day) FILTER (WHERE NOT x.working), '{}'),
           coalesce(array_agg(x.day) FILTER (WHERE x.working), '{}') INTO off, extra
    FROM (SELECT DISTINCT ON (d.day) d.day, d.working FROM calendar_days d
          WHERE d.day BETWEEN p_from AND p_to
            AND (d.city_id = p_city OR (d.city_id IS NULL
                 AND EXISTS (SELECT 1 FROM admin_units u WHERE u.id = p_city AND u.code IS NOT NULL)))
          ORDER BY d.day, d.city_id NULLS LAST) x;
END
$$;

CREATE OR REPLACE FUNCTION gridpatrol_deadline(p_city int, p_start timestamptz, p_hours float8, p_wall boolean)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
-- p_hours of working time after p_start (wall-clock hours when p_wall or no city)
DECLARE
    tz text := 'Asia/Shanghai';
    starts time[] := '{08:30,13:30}';
    ends time[] := '{12:00,17:30}';
    here timestamp;
    d date;
    fetched date;
    off date[];
    extra date[];
    left_s float8 := greatest(p_hours, 0) * 3600;
    a timestamp;
    b timestamp;
    span float8;
BEGIN
    IF p_wall OR p_city IS NULL THEN
        RETURN p_start + make_interval(secs => left_s);
    END IF;
    SELECT s.timezone, s.work_starts, s.work_ends INTO tz, starts, ends FROM city_settings s WHERE s.city_id = p_city;
    IF NOT FOUND THEN
        tz := 'Asia/Shanghai'; starts := '{08:30,13:30}'; ends := '{12:00,17:30}';
    END IF;
    here := p_start AT TIME ZONE tz;
    d := here::date;
    fetched := d - 1;
    LOOP
        IF d > fetched THEN  -- the calendar's exceptions, a stretch at a time
            IF d > here::date + 3660 THEN
                RAISE EXCEPTION 'no working time within ten years of % for city %', p_start, p_city;
            END IF;
            SELECT w.off, w.extra INTO off, extra FROM gridpatrol_work_days(p_city, d, d + 120) w;
            fetched := d + 120;
        END IF;
        IF d = ANY(extra) OR (extract(isodow FROM d) < 6 AND NOT d = ANY(off)) THEN
            FOR i IN 1 .. coalesce(array_length(starts, 1), 0) LOOP
                a := greatest(d + starts[i], here);
                b := d + ends[i];
                IF b > a THEN
                    span := extract(epoch FROM b - a);
                    IF span >= left_s THEN
                        RETURN (a + make_interval(secs => left_s)) AT TIME ZONE tz;
                    END IF;
                    left_s := left_s - span;
                END IF;
            END LOOP;
        END IF;
        d := d + 1;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION gridpatrol_working_hours(p_city int, p_from timestamptz, p_to timestamptz, p_wall boolean)
RETURNS float8 LANGUAGE plpgsql STABLE AS $$
-- the working hours between two moments (wall-clock hours when p_wall or no city); 0 when p_to is not later
DECLARE
    tz text := 'Asia/Shanghai';
    starts time[] := '{08:30,13:30}';
    ends time[] := '{12:00,17:30}';
    here timestamp;
    there timestamp;
    d date;
    w record;
    total float8 := 0;
    a timestamp;
    b timestamp;
BEGIN
    IF p_to <= p_from THEN
        RETURN 0;
    END IF;
    IF p_wall OR p_city IS NULL THEN
        RETURN extract(epoch FROM p_to - p_from) / 3600;
    END IF;
    SELECT s.timezone, s.work_starts, s.work_ends INTO tz, starts, ends FROM city_settings s WHERE s.city_id = p_city;
    IF NOT FOUND THEN
        tz := 'Asia/Shanghai'; starts := '{08:30,13:30}'; ends := '{12:00,17:30}';
    END IF;
    here := p_from AT TIME ZONE tz;
    there := p_to AT TIME ZONE tz;
    SELECT x.off, x.extra INTO w FROM gridpatrol_work_days(p_city, here::date, there::date) x;
    d := here::date;
    WHILE d <= there::date LOOP
        IF d = ANY(w.extra) OR (extract(isodow FROM d) < 6 AND NOT d = ANY(w.off)) THEN
            FOR i IN 1 .. coalesce(array_length(starts, 1), 0) LOOP
                a := greatest(d + starts[i], here);
                b := least(d + ends[i], there);
                IF b > a THEN
                    total := total + extract(epoch FROM b - a);
                END IF;
            END LOOP;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN total / 3600;
END
$$;
