/* tests/unit/test_conf.c — config trees, paths, --set, conversions and
 * option tables (sdk/src/conf.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kubus/conf.h>
#include <kubus/err.h>

static const char sample[] = "host:\n"                      /* 1 */
			     "  name: node-1\n"             /* 2 */
			     "plugins:\n"                   /* 3 */
			     "  - name: store\n"            /* 4 */
			     "    use: store-lmdb\n"        /* 5 */
			     "    config:\n"                /* 6 */
			     "      path: /var/lib/kubus\n" /* 7 */
			     "      map_size: 1Gi\n"        /* 8 */
			     "  - name: api\n"              /* 9 */
			     "    config: ~\n"              /* 10 */
			     "empty:\n"                     /* 11 */
			     "quoted: \"\"\n"               /* 12 */
			     "nul: null\n"                  /* 13 */
			     "list: [a, b, \"c\"]\n"        /* 14 */
			     "tagged: !!str 42\n"           /* 15 */
			     "\"a.b\": dotted\n";           /* 16 */

static kb_conf *parse(const char *text)
{
	char err[256] = "";
	kb_conf *c =
	    kb_conf_parse_yaml(text, strlen(text), "t.yaml", err, sizeof(err));

	if (!c)
		fail_msg("parse failed: %s", err);
	return c;
}

/* Parse text that must fail and compare the whole message. */
static void expect_parse_err(const char *text, const char *want)
{
	char err[256] = "";
	kb_conf *c =
	    kb_conf_parse_yaml(text, strlen(text), "t.yaml", err, sizeof(err));

	assert_null(c);
	assert_string_equal(err, want);
}

/* Same, comparing only the start (libyaml's wording may vary). */
static void expect_parse_err_prefix(const char *text, const char *want)
{
	char err[256] = "";
	kb_conf *c =
	    kb_conf_parse_yaml(text, strlen(text), "t.yaml", err, sizeof(err));

	assert_null(c);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error `%s` does not start with `%s`", err, want);
}

/* --- parsing ------------------------------------------------------------- */

static void test_parse_tree(void **state)
{
	kb_conf *root = parse(sample);
	const kb_conf *plugins = kb_conf_get(root, "plugins");
	const kb_conf *cfg, *list;

	(void)state;
	assert_int_equal(kb_conf_type(root), KB_CONF_MAP);
	assert_int_equal(kb_conf_len(root), 8);
	assert_string_equal(kb_conf_key_at(root, 0), "host");
	assert_string_equal(kb_conf_key_at(root, 7), "a.b");
	assert_null(kb_conf_key_at(root, 8));
	assert_string_equal(kb_conf_where(root), "");

	assert_int_equal(kb_conf_type(plugins), KB_CONF_SEQ);
	assert_int_equal(kb_conf_len(plugins), 2);
	assert_null(kb_conf_key_at(plugins, 0));
	cfg = kb_conf_get(kb_conf_at(plugins, 0), "config");
	assert_int_equal(kb_conf_type(cfg), KB_CONF_MAP);
	assert_string_equal(kb_conf_str(kb_conf_get(cfg, "map_size")), "1Gi");
	assert_null(kb_conf_str(cfg));
	assert_null(kb_conf_get(cfg, "nope"));
	assert_null(kb_conf_get(plugins, "config"));
	assert_null(kb_conf_at(cfg, 2));

	assert_int_equal(kb_conf_type(kb_conf_get(root, "empty")),
	    KB_CONF_NULL);
	assert_non_null(kb_conf_get(root, "empty"));
	assert_int_equal(kb_conf_type(kb_conf_get(root, "nul")), KB_CONF_NULL);
	assert_int_equal(kb_conf_type(kb_conf_path(root, "plugins[1].config")),
	    KB_CONF_NULL);
	assert_int_equal(kb_conf_type(kb_conf_get(root, "quoted")),
	    KB_CONF_SCALAR);
	assert_string_equal(kb_conf_str(kb_conf_get(root, "quoted")), "");
	assert_string_equal(kb_conf_str(kb_conf_get(root, "tagged")), "42");

	list = kb_conf_get(root, "list");
	assert_int_equal(kb_conf_len(list), 3);
	assert_string_equal(kb_conf_str(kb_conf_at(list, 2)), "c");

	/* NULL is a null node for every reader. */
	assert_int_equal(kb_conf_type(NULL), KB_CONF_NULL);
	assert_null(kb_conf_str(NULL));
	assert_int_equal(kb_conf_len(NULL), 0);
	assert_null(kb_conf_get(NULL, "x"));
	assert_null(kb_conf_at(NULL, 0));
	assert_null(kb_conf_file(NULL));
	assert_int_equal(kb_conf_line(NULL), 0);
	assert_string_equal(kb_conf_where(NULL), "");
	kb_conf_free(root);
	kb_conf_free(NULL);
}

static void test_parse_positions(void **state)
{
	kb_conf *root = parse(sample);
	const kb_conf *n;

	(void)state;
	assert_string_equal(kb_conf_file(root), "t.yaml");
	assert_int_equal(kb_conf_line(root), 1);
	assert_int_equal(kb_conf_col(root), 1);

	n = kb_conf_path(root, "plugins[0].config.path");
	assert_string_equal(kb_conf_str(n), "/var/lib/kubus");
	assert_string_equal(kb_conf_file(n), "t.yaml");
	assert_int_equal(kb_conf_line(n), 7);
	assert_int_equal(kb_conf_col(n), 13);
	assert_string_equal(kb_conf_where(n), "plugins[0].config.path");

	n = kb_conf_path(root, "plugins[1]");
	assert_int_equal(kb_conf_line(n), 9);
	assert_int_equal(kb_conf_col(n), 5);
	assert_string_equal(kb_conf_where(n), "plugins[1]");

	n = kb_conf_path(root, "list[1]");
	assert_int_equal(kb_conf_line(n), 14);
	assert_int_equal(kb_conf_col(n), 11);
	assert_string_equal(kb_conf_where(n), "list[1]");

	/* A key with a dot is escaped so the path leads back to it. */
	n = kb_conf_get(root, "a.b");
	assert_string_equal(kb_conf_where(n), "a\\.b");
	assert_ptr_equal(kb_conf_path(root, kb_conf_where(n)), n);
	kb_conf_free(root);
}

static void test_parse_empty(void **state)
{
	char err[64];
	kb_conf *root = kb_conf_parse_yaml("", 0, "e.yaml", err, sizeof(err));

	(void)state;
	assert_non_null(root);
	assert_int_equal(kb_conf_type(root), KB_CONF_NULL);
	kb_conf_free(root);

	root = parse("# only a comment\n");
	assert_int_equal(kb_conf_type(root), KB_CONF_NULL);
	kb_conf_free(root);

	root = parse("---\n");
	assert_int_equal(kb_conf_type(root), KB_CONF_NULL);
	kb_conf_free(root);

	root = parse("just text\n");
	assert_string_equal(kb_conf_str(root), "just text");
	kb_conf_free(root);

	/* Text need not end in NUL: only len bytes are read. */
	root = kb_conf_parse_yaml("a: 1\nb: 2", 4, "t.yaml", NULL, 0);
	assert_int_equal(kb_conf_len(root), 1);
	kb_conf_free(root);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_parse_err_prefix("a: 1\nb: [1, 2\nc: 3\n", "t.yaml:3:");
	expect_parse_err_prefix("a:\n  b: 1\n c: 2\n", "t.yaml:3:2: ");
	expect_parse_err("key: \"open\n",
	    "t.yaml:2:1: found unexpected end of stream "
	    "(while scanning a quoted scalar at line 1)");
	expect_parse_err("a: b: c\n",
	    "t.yaml:1:5: mapping values are not allowed in this context");
	/* invalid UTF-8 is reported where it is */
	expect_parse_err_prefix("a: 1\nb: \xff\n", "t.yaml:2:4: ");
}

static void test_parse_duplicate_key(void **state)
{
	(void)state;
	expect_parse_err("a: 1\nb: 2\na: 3\n",
	    "t.yaml:3:1: duplicate key `a` in the top level");
	expect_parse_err("p:\n  - x: 1\n    y: 2\n    x: 3\n",
	    "t.yaml:4:5: duplicate key `x` in p[0]");
}

static void test_parse_refusals(void **state)
{
	(void)state;
	expect_parse_err("a: 1\n---\nb: 2\n",
	    "t.yaml:2:1: more than one YAML document in one file");
	expect_parse_err("a: &x 1\nb: *x\n",
	    "t.yaml:1:4: anchors (&x) are not supported in kubus configs");
	expect_parse_err("b: *x\n",
	    "t.yaml:1:4: aliases (*x) are not supported in kubus configs");
	expect_parse_err("? [a, b]\n: 1\n",
	    "t.yaml:1:3: keys in the top level must be scalars");
}

static void test_parse_deep(void **state)
{
	char text[1024], err[256];
	kb_conf *c;
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 100; i++)
		text[n++] = '[';
	for (int i = 0; i < 100; i++)
		text[n++] = ']';
	c = kb_conf_parse_yaml(text, n, "t.yaml", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "nested deeper than"));
}

static void test_parse_small_err_buffer(void **state)
{
	char err[8];

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_null(
	    kb_conf_parse_yaml("a: 1\na: 2\n", 10, "t.yaml", err, sizeof(err)));
	assert_string_equal(err, "t.yaml:");
	assert_null(kb_conf_parse_yaml("a: 1\na: 2\n", 10, "t.yaml", NULL, 0));
	assert_null(kb_conf_parse_yaml("a: 1\na: 2\n", 10, NULL, NULL, 0));
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/kubus-test-conf-XXXXXX", err[256];
	int fd = mkstemp(path);
	kb_conf *c;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, sample, strlen(sample)),
	    (ssize_t)strlen(sample));
	close(fd);
	c = kb_conf_load_file(path, err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(kb_conf_file(kb_conf_path(c, "host.name")), path);
	kb_conf_free(c);
	unlink(path);

	assert_null(kb_conf_load_file(path, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
}

/* --- paths and --set ----------------------------------------------------- */

static void test_path(void **state)
{
	kb_conf *root = parse(sample);

	(void)state;
	assert_ptr_equal(kb_conf_path(root, ""), root);
	assert_string_equal(kb_conf_str(kb_conf_path(root, "host.name")),
	    "node-1");
	assert_string_equal(kb_conf_str(kb_conf_path(root, "plugins[1].name")),
	    "api");
	assert_string_equal(kb_conf_str(kb_conf_path(root, "a\\.b")), "dotted");
	assert_null(kb_conf_path(root, "a.b"));
	assert_null(kb_conf_path(root, "plugins[2]"));
	assert_null(kb_conf_path(root, "plugins.name"));
	assert_null(kb_conf_path(root, "host[0]"));
	assert_null(kb_conf_path(root, "host..name"));
	assert_null(kb_conf_path(root, "host."));
	assert_null(kb_conf_path(root, ".host"));
	assert_null(kb_conf_path(root, "plugins[x]"));
	assert_null(kb_conf_path(root, "plugins[1"));
	assert_null(kb_conf_path(root, "plugins[]"));
	assert_null(kb_conf_path(root, "plugins[99999999999999999999999]"));
	assert_null(kb_conf_path(root, "plugins[0]name"));
	assert_null(kb_conf_path(root, "host.name.more"));
	assert_null(kb_conf_path(NULL, "host"));
	assert_null(kb_conf_path(root, NULL));

	assert_string_equal(kb_conf_str(
				kb_conf_path(kb_conf_get(root, "list"), "[0]")),
	    "a");
	kb_conf_free(root);
}

static void test_set_override(void **state)
{
	kb_conf *root = parse(sample);
	const kb_conf *n;
	char err[256];

	(void)state;
	assert_int_equal(kb_conf_set(root, "plugins[0].config.path", "/srv",
			     err, sizeof(err)),
	    KB_OK);
	n = kb_conf_path(root, "plugins[0].config.path");
	assert_string_equal(kb_conf_str(n), "/srv");
	assert_string_equal(kb_conf_file(n), "--set");
	assert_int_equal(kb_conf_line(n), 0);
	assert_string_equal(kb_conf_where(n), "plugins[0].config.path");
	/* the entry keeps its place in the map */
	assert_string_equal(kb_conf_key_at(kb_conf_path(root,
					       "plugins[0].config"),
				0),
	    "path");

	/* A null value can be overwritten, and a value set to null. */
	assert_int_equal(kb_conf_set(root, "empty", "now", err, sizeof(err)),
	    KB_OK);
	assert_string_equal(kb_conf_str(kb_conf_get(root, "empty")), "now");
	assert_int_equal(kb_conf_set(root, "host.name", NULL, err, sizeof(err)),
	    KB_OK);
	assert_int_equal(kb_conf_type(kb_conf_path(root, "host.name")),
	    KB_CONF_NULL);
	assert_int_equal(kb_conf_set(root, "list[1]", "B", NULL, 0), KB_OK);
	assert_string_equal(kb_conf_str(kb_conf_path(root, "list[1]")), "B");
	kb_conf_free(root);
}

static void test_set_create(void **state)
{
	kb_conf *root = parse(sample);
	const kb_conf *n;
	char err[256];

	(void)state;
	/* `config: ~` becomes a map */
	assert_int_equal(kb_conf_set(root, "plugins[1].config.listen",
			     "1.2.3.4:5", err, sizeof(err)),
	    KB_OK);
	n = kb_conf_path(root, "plugins[1].config");
	assert_int_equal(kb_conf_type(n), KB_CONF_MAP);
	assert_int_equal(kb_conf_line(n), 10);
	n = kb_conf_get(n, "listen");
	assert_string_equal(kb_conf_str(n), "1.2.3.4:5");
	assert_string_equal(kb_conf_where(n), "plugins[1].config.listen");

	/* Maps are made along the way, and escaped keys kept whole. */
	assert_int_equal(kb_conf_set(root, "x.y\\.z.w", "1", err, sizeof(err)),
	    KB_OK);
	n = kb_conf_get(kb_conf_get(kb_conf_get(root, "x"), "y.z"), "w");
	assert_string_equal(kb_conf_str(n), "1");
	assert_string_equal(kb_conf_where(n), "x.y\\.z.w");
	kb_conf_free(root);

	/* An empty file and a fresh map take --set as well. */
	root = kb_conf_parse_yaml("", 0, "e.yaml", NULL, 0);
	assert_int_equal(kb_conf_set(root, "a.b", "c", err, sizeof(err)),
	    KB_OK);
	assert_string_equal(kb_conf_str(kb_conf_path(root, "a.b")), "c");
	kb_conf_free(root);

	root = kb_conf_new_map("x.yaml", "plugins[3].config");
	assert_int_equal(kb_conf_type(root), KB_CONF_MAP);
	assert_int_equal(kb_conf_len(root), 0);
	assert_string_equal(kb_conf_where(root), "plugins[3].config");
	assert_int_equal(kb_conf_set(root, "k", "v", err, sizeof(err)), KB_OK);
	assert_string_equal(kb_conf_where(kb_conf_get(root, "k")),
	    "plugins[3].config.k");
	kb_conf_free(root);
}

static void expect_set_err(kb_conf *root, const char *path, const char *want)
{
	char err[256] = "";

	assert_int_equal(kb_conf_set(root, path, "v", err, sizeof(err)),
	    KB_EINVAL);
	assert_string_equal(err, want);
}

static void test_set_errors(void **state)
{
	kb_conf *root = parse(sample);

	(void)state;
	expect_set_err(root, "host.name.x",
	    "cannot set `host.name.x`: host.name is a scalar, not a map");
	expect_set_err(root, "plugins.name",
	    "cannot set `plugins.name`: plugins is a sequence, not a map");
	expect_set_err(root, "host[0]",
	    "cannot set `host[0]`: host is a map, not a sequence");
	expect_set_err(root, "plugins[5].name",
	    "cannot set `plugins[5].name`: plugins is a sequence too short");
	expect_set_err(root, "new.list[0]",
	    "cannot set `new.list[0]`: no sequence to index");
	expect_set_err(root, "plugins[0].config",
	    "cannot set `plugins[0].config`: it is a map, not a scalar");
	expect_set_err(root, "a..b", "cannot set `a..b`: malformed path");
	expect_set_err(root, "", "cannot set an empty path");
	assert_int_equal(kb_conf_set(root, "x[", "v", NULL, 0), KB_EINVAL);
	/* A failed --set leaves nothing behind. */
	assert_null(kb_conf_get(root, "new"));
	assert_int_equal(kb_conf_len(root), 8);
	kb_conf_free(root);
}

/* --- conversions --------------------------------------------------------- */

static void test_to_bool(void **state)
{
	static const char *const yes[] = { "true", "True", "YES", "on", "On" };
	static const char *const no[] = { "false", "FALSE", "no", "off",
		"Off" };
	static const char *const bad[] = { "", "1", "0", "y", "maybe", " true",
		"true ", "truex" };
	bool b;

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		b = false;
		assert_int_equal(kb_conf_to_bool(yes[i], &b), KB_OK);
		assert_true(b);
		assert_int_equal(kb_conf_to_bool(no[i], &b), KB_OK);
		assert_false(b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(kb_conf_to_bool(bad[i], &b), KB_EINVAL);
	assert_int_equal(kb_conf_to_bool(NULL, &b), KB_EINVAL);
}

static void test_to_int(void **state)
{
	static const char *const bad[] = { "", "-", "+", "1.0", "0x10", " 1",
		"1 ", "12a", "9223372036854775808", "-9223372036854775809",
		"99999999999999999999", "1e3" };
	int64_t v;

	(void)state;
	assert_int_equal(kb_conf_to_int("0", &v), KB_OK);
	assert_int_equal(v, 0);
	assert_int_equal(kb_conf_to_int("-42", &v), KB_OK);
	assert_int_equal(v, -42);
	assert_int_equal(kb_conf_to_int("+7", &v), KB_OK);
	assert_int_equal(v, 7);
	assert_int_equal(kb_conf_to_int("007", &v), KB_OK);
	assert_int_equal(v, 7);
	assert_int_equal(kb_conf_to_int("9223372036854775807", &v), KB_OK);
	assert_true(v == INT64_MAX);
	assert_int_equal(kb_conf_to_int("-9223372036854775808", &v), KB_OK);
	assert_true(v == INT64_MIN);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 123;
		assert_int_equal(kb_conf_to_int(bad[i], &v), KB_EINVAL);
		assert_int_equal(v, 123);
	}
	assert_int_equal(kb_conf_to_int(NULL, &v), KB_EINVAL);
}

static void test_to_double(void **state)
{
	static const char *const bad[] = { "", "abc", "1.5x", " 1", "1 ", "inf",
		"nan", "-inf", "0x1p3", "1e999", "1e", ".", "e5", "--1" };
	double d;

	(void)state;
	assert_int_equal(kb_conf_to_double("1.5", &d), KB_OK);
	assert_true(d == 1.5);
	assert_int_equal(kb_conf_to_double("-2", &d), KB_OK);
	assert_true(d == -2.0);
	assert_int_equal(kb_conf_to_double("1e3", &d), KB_OK);
	assert_true(d == 1000.0);
	assert_int_equal(kb_conf_to_double(".25", &d), KB_OK);
	assert_true(d == 0.25);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(kb_conf_to_double(bad[i], &d), KB_EINVAL);
	assert_int_equal(kb_conf_to_double(NULL, &d), KB_EINVAL);
}

static void test_to_size(void **state)
{
	static const struct {
		const char *s;
		int64_t v;
	} good[] = {
		{ "0", 0 },
		{ "512", 512 },
		{ "512B", 512 },
		{ "1k", 1000 },
		{ "1K", 1000 },
		{ "2kB", 2000 },
		{ "1Ki", 1024 },
		{ "1KiB", 1024 },
		{ "64M", 64000000 },
		{ "64MiB", 64 << 20 },
		{ "1.5Mi", 1572864 },
		{ "1.5M", 1500000 },
		{ "1.1k", 1100 },
		{ "2G", 2000000000 },
		{ "1Gi", 1 << 30 },
		{ "1GiB", 1 << 30 },
		{ "1T", 1000000000000LL },
		{ "1Ti", 1LL << 40 },
		{ "1Pi", 1LL << 50 },
		{ "7Ei", 7LL << 60 },
		{ "0.5Ki", 512 },
		{ "1.000Gi", 1 << 30 },
		{ "9223372036854775807", INT64_MAX },
	};
	static const char *const bad[] = { "", "-1", "+1", "1.5", "0.3Ki", "1x",
		"1 Mi", "1Mi ", "1mi", "1m", "1kib", "Mi", "1.Mi", ".5Mi",
		"8Ei", "9223372036854775808", "99999999999999999999999",
		"1.0000000000000000001Ki", "16777216Ti", "1e3" };
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -1;
		if (kb_conf_to_size(good[i].s, &v) != KB_OK)
			fail_msg("size `%s` refused", good[i].s);
		if (v != good[i].v)
			fail_msg("size `%s` = %lld", good[i].s, (long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (kb_conf_to_size(bad[i], &v) != KB_EINVAL)
			fail_msg("size `%s` accepted", bad[i]);
	assert_int_equal(kb_conf_to_size(NULL, &v), KB_EINVAL);
}

static void test_to_duration(void **state)
{
	static const struct {
		const char *s;
		int64_t v;
	} good[] = {
		{ "0", 0 },
		{ "0s", 0 },
		{ "250ms", 250 },
		{ "10s", 10000 },
		{ "5m", 300000 },
		{ "1h", 3600000 },
		{ "1m30s", 90000 },
		{ "1h2m3s4ms", 3723004 },
		{ "1.5s", 1500 },
		{ "0.5h", 1800000 },
		{ "1s500ms", 1500 },
		{ "2562047788015h", 9223372036854000000LL },
	};
	static const char *const bad[] = { "", "10", "1.5", "-1s", "10x", "1s ",
		" 1s", "s", "1.0005s", "1sm", "ms", "1d", "1S",
		"9999999999999999999h", "2562047788016h", "2562047788015h13m" };
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -1;
		if (kb_conf_to_duration_ms(good[i].s, &v) != KB_OK)
			fail_msg("duration `%s` refused", good[i].s);
		if (v != good[i].v)
			fail_msg("duration `%s` = %lld", good[i].s,
			    (long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (kb_conf_to_duration_ms(bad[i], &v) != KB_EINVAL)
			fail_msg("duration `%s` accepted", bad[i]);
	assert_int_equal(kb_conf_to_duration_ms(NULL, &v), KB_EINVAL);
}

/* --- option tables ------------------------------------------------------- */

struct cfg {
	char *path;
	char *label;
	int64_t mapsize;
	int64_t port;
	bool sync;
	double ratio;
	int64_t timeout;
	char **peers;
	const kb_conf *extra;
};

static const struct kb_opt cfg_opts[] = {
	KB_OPT_STR_REQ("path", struct cfg, path, "where the data lives"),
	KB_OPT_STR("label", struct cfg, label, "none", "a label"),
	KB_OPT_SIZE("map_size", struct cfg, mapsize, "1Gi", "initial map"),
	KB_OPT_INT("port", struct cfg, port, "8080", 1, 65535, "listen port"),
	KB_OPT_BOOL("sync", struct cfg, sync, "true", "fsync each commit"),
	KB_OPT_DOUBLE("ratio", struct cfg, ratio, "0.5", "a fraction"),
	KB_OPT_DURATION("timeout", struct cfg, timeout, "10s", "a timeout"),
	KB_OPT_STRLIST("peers", struct cfg, peers, "other hosts"),
	KB_OPT_NODE("extra", struct cfg, extra, "anything"),
	KB_OPT_END,
};

/* Parse `yaml` (a plugin list like configs/x.yaml) and run the table on
 * plugins[0].config; the tree is returned for NODE checks. */
static int run_opts(const char *yaml, struct cfg *out, char *err, size_t errlen,
    kb_conf **tree)
{
	kb_conf *root = parse(yaml);
	int rc;

	memset(out, 0x5a, sizeof(*out)); /* must not matter */
	rc = kb_conf_opts(kb_conf_path(root, "plugins[0].config"), cfg_opts,
	    out, "store-lmdb", err, errlen);
	if (tree)
		*tree = root;
	else
		kb_conf_free(root);
	return rc;
}

#define PLUGIN_HEAD                                                            \
	"plugins:\n"                                                           \
	"  - name: store\n"                                                    \
	"    use: store-lmdb\n"                                                \
	"    config:\n"

static void expect_opts_err(const char *config_lines, const char *want)
{
	char yaml[1024], err[256] = "";
	struct cfg c;

	snprintf(yaml, sizeof(yaml), PLUGIN_HEAD "%s", config_lines);
	assert_int_equal(run_opts(yaml, &c, err, sizeof(err), NULL), KB_EINVAL);
	assert_string_equal(err, want);
	/* On error nothing is left to free. */
	assert_null(c.path);
	assert_null(c.label);
	assert_null(c.peers);
}

static void test_opts_defaults(void **state)
{
	struct cfg c;
	char err[256];

	(void)state;
	assert_int_equal(run_opts(PLUGIN_HEAD "      path: /srv\n", &c, err,
			     sizeof(err), NULL),
	    KB_OK);
	assert_string_equal(c.path, "/srv");
	assert_string_equal(c.label, "none");
	assert_true(c.mapsize == 1LL << 30);
	assert_int_equal(c.port, 8080);
	assert_true(c.sync);
	assert_true(c.ratio == 0.5);
	assert_int_equal(c.timeout, 10000);
	assert_null(c.peers);
	assert_null(c.extra);
	kb_conf_opts_free(cfg_opts, &c);
	assert_null(c.path);
	kb_conf_opts_free(cfg_opts, &c); /* twice is harmless */
}

static void test_opts_values(void **state)
{
	struct cfg c;
	char err[256];
	kb_conf *tree;

	(void)state;
	assert_int_equal(run_opts(PLUGIN_HEAD "      path: /srv\n"
					      "      label: ~\n"
					      "      map_size: 64Mi\n"
					      "      port: 443\n"
					      "      sync: off\n"
					      "      ratio: 0.25\n"
					      "      timeout: 1m30s\n"
					      "      peers: [a, b]\n"
					      "      extra: {x: 1}\n",
			     &c, err, sizeof(err), &tree),
	    KB_OK);
	assert_string_equal(c.path, "/srv");
	assert_string_equal(c.label, "none"); /* `~` means not given */
	assert_int_equal(c.mapsize, 64 << 20);
	assert_int_equal(c.port, 443);
	assert_false(c.sync);
	assert_true(c.ratio == 0.25);
	assert_int_equal(c.timeout, 90000);
	assert_non_null(c.peers);
	assert_string_equal(c.peers[0], "a");
	assert_string_equal(c.peers[1], "b");
	assert_null(c.peers[2]);
	assert_ptr_equal(c.extra,
	    kb_conf_path(tree, "plugins[0].config.extra"));
	assert_int_equal(kb_conf_type(c.extra), KB_CONF_MAP);
	kb_conf_opts_free(cfg_opts, &c);
	kb_conf_free(tree);
}

static void test_opts_strlist(void **state)
{
	struct cfg c;
	char err[256];

	(void)state;
	assert_int_equal(run_opts(PLUGIN_HEAD "      path: /srv\n"
					      "      peers: solo\n",
			     &c, err, sizeof(err), NULL),
	    KB_OK);
	assert_string_equal(c.peers[0], "solo");
	assert_null(c.peers[1]);
	kb_conf_opts_free(cfg_opts, &c);

	assert_int_equal(run_opts(PLUGIN_HEAD "      path: /srv\n"
					      "      peers:\n"
					      "        - h1\n"
					      "        - h2\n"
					      "        - h3\n",
			     &c, err, sizeof(err), NULL),
	    KB_OK);
	assert_string_equal(c.peers[2], "h3");
	assert_null(c.peers[3]);
	kb_conf_opts_free(cfg_opts, &c);

	assert_int_equal(run_opts(PLUGIN_HEAD "      path: /srv\n"
					      "      peers: []\n",
			     &c, err, sizeof(err), NULL),
	    KB_OK);
	assert_non_null(c.peers);
	assert_null(c.peers[0]);
	kb_conf_opts_free(cfg_opts, &c);

	expect_opts_err("      path: /srv\n"
			"      peers: [a, [b]]\n",
	    "t.yaml:6:18: `peers` in plugins[0].config (store-lmdb) must be a "
	    "list of strings, got a sequence at plugins[0].config.peers[1]");
	expect_opts_err("      path: /srv\n"
			"      peers: {a: 1}\n",
	    "t.yaml:6:14: `peers` in plugins[0].config (store-lmdb) must be a "
	    "string or a list of strings, got a map");
}

static void test_opts_unknown_key(void **state)
{
	(void)state;
	expect_opts_err("      path: /srv\n"
			"      mapsize: 1Gi\n",
	    "t.yaml:6:7: unknown key `mapsize` in plugins[0].config "
	    "(store-lmdb)");
}

static void test_opts_unknown_key_line14(void **state)
{
	static const char x_yaml[] =
	    "plugins:\n  - {}\n  - {}\n  - name: store\n    use: store-lmdb\n"
	    "    config:\n      path: /srv\n\n\n\n\n\n\n      mapsize: 1\n";
	char err[256];
	struct cfg c;
	kb_conf *root = parse("plugins:\n"
			      "  - name: a\n"
			      "    use: x\n"
			      "  - name: b\n"
			      "    use: y\n"
			      "  - name: store\n"
			      "    use: store-lmdb\n"
			      "    # the store keeps its data here\n"
			      "    config:\n"
			      "      path: /srv\n"
			      "      sync: true\n"
			      "      ratio: 1\n"
			      "      port: 1\n"
			      "    mapsize: 4\n");
	kb_conf *cfg = (kb_conf *)kb_conf_path(root, "plugins[2]");

	(void)state;
	/* the host would run the table on the config; run it on the entry
	 * to see the message for a stray plugin-level key */
	assert_int_equal(kb_conf_opts(cfg, cfg_opts, &c, "store-lmdb", err,
			     sizeof(err)),
	    KB_EINVAL);
	assert_string_equal(err,
	    "t.yaml:6:5: unknown key `name` in plugins[2] "
	    "(store-lmdb)");
	kb_conf_free(root);

	root = kb_conf_parse_yaml(x_yaml, strlen(x_yaml), "configs/x.yaml", err,
	    sizeof(err));
	assert_non_null(root);
	assert_int_equal(kb_conf_opts(kb_conf_path(root, "plugins[2].config"),
			     cfg_opts, &c, "store-lmdb", err, sizeof(err)),
	    KB_EINVAL);
	assert_string_equal(err,
	    "configs/x.yaml:14:7: unknown key `mapsize` "
	    "in plugins[2].config (store-lmdb)");
	kb_conf_free(root);
}

static void test_opts_missing(void **state)
{
	struct cfg c;
	char err[256];
	kb_conf *root;

	(void)state;
	expect_opts_err("      sync: true\n",
	    "t.yaml:5:7: missing required key `path` in plugins[0].config "
	    "(store-lmdb)");
	expect_opts_err("      path:\n",
	    "t.yaml:5:12: `path` in plugins[0].config (store-lmdb) needs a "
	    "value");

	/* No config node at all */
	assert_int_equal(kb_conf_opts(NULL, cfg_opts, &c, "store-lmdb", err,
			     sizeof(err)),
	    KB_EINVAL);
	assert_string_equal(err,
	    "missing required key `path` in store-lmdb "
	    "config");
	assert_int_equal(kb_conf_opts(NULL, cfg_opts, &c, NULL, err,
			     sizeof(err)),
	    KB_EINVAL);
	assert_string_equal(err, "missing required key `path` in the config");

	/* `config: ~` is a null node with a place */
	root = parse("plugins:\n  - name: s\n    config: ~\n");
	assert_int_equal(kb_conf_opts(kb_conf_path(root, "plugins[0].config"),
			     cfg_opts, &c, "store-lmdb", err, sizeof(err)),
	    KB_EINVAL);
	assert_string_equal(err,
	    "t.yaml:3:13: missing required key `path` in "
	    "plugins[0].config (store-lmdb)");
	kb_conf_free(root);

	/* A fresh map from the host */
	root = kb_conf_new_map("x.yaml", "plugins[4].config");
	assert_int_equal(kb_conf_opts(root, cfg_opts, &c, "store-lmdb", err,
			     sizeof(err)),
	    KB_EINVAL);
	assert_string_equal(err,
	    "x.yaml: missing required key `path` in "
	    "plugins[4].config (store-lmdb)");
	kb_conf_free(root);
}

static void test_opts_wrong_type(void **state)
{
	(void)state;
	expect_opts_err("      path: /srv\n"
			"      sync: maybe\n",
	    "t.yaml:6:13: `sync` in plugins[0].config (store-lmdb) must be a "
	    "boolean, got `maybe`");
	expect_opts_err("      path: [a]\n",
	    "t.yaml:5:13: `path` in plugins[0].config (store-lmdb) must be a "
	    "string, got a sequence");
	expect_opts_err("      path: /srv\n"
			"      port: eighty\n",
	    "t.yaml:6:13: `port` in plugins[0].config (store-lmdb) must be an "
	    "integer, got `eighty`");
	expect_opts_err("      path: /srv\n"
			"      ratio: half\n",
	    "t.yaml:6:14: `ratio` in plugins[0].config (store-lmdb) must be a "
	    "number, got `half`");
	expect_opts_err("      path: /srv\n"
			"      map_size: 1Gb\n",
	    "t.yaml:6:17: `map_size` in plugins[0].config (store-lmdb) must be "
	    "a size (like 512, 64Mi or 1.5G), got `1Gb`");
	expect_opts_err("      path: /srv\n"
			"      timeout: 10\n",
	    "t.yaml:6:16: `timeout` in plugins[0].config (store-lmdb) must be "
	    "a duration (like 250ms, 10s or 1m30s), got `10`");
	expect_opts_err("      path: /srv\n"
			"      sync: {a: 1}\n",
	    "t.yaml:6:13: `sync` in plugins[0].config (store-lmdb) must be a "
	    "boolean, got a map");
}

static void test_opts_not_a_map(void **state)
{
	char err[256];
	struct cfg c;
	kb_conf *root = parse("plugins:\n  - config: [1, 2]\n");

	(void)state;
	assert_int_equal(kb_conf_opts(kb_conf_path(root, "plugins[0].config"),
			     cfg_opts, &c, "store-lmdb", err, sizeof(err)),
	    KB_EINVAL);
	assert_string_equal(err,
	    "t.yaml:2:13: options in plugins[0].config "
	    "(store-lmdb) must be a map, got a sequence");
	kb_conf_free(root);
}

static void test_opts_bounds(void **state)
{
	struct bounded {
		int64_t n, sz, ms;
	} b;
	static const struct kb_opt opts[] = {
		KB_OPT_INT("n", struct bounded, n, "5", 1, 10, "n"),
		KB_OPT_(("sz"), KB_OPT_SIZE_, struct bounded, sz, "4Ki", false,
		    4096, 1 << 20, "sz"),
		KB_OPT_(("ms"), KB_OPT_DURATION_, struct bounded, ms, "1s",
		    false, 100, 60000, "ms"),
		KB_OPT_END,
	};
	static const struct {
		const char *yaml, *err;
	} cases[] = {
		{ "n: 0\n",
		    "t.yaml:1:4: `n` in the top level (p) must be "
		    "between 1 and 10, got `0`" },
		{ "n: 11\n",
		    "t.yaml:1:4: `n` in the top level (p) must be "
		    "between 1 and 10, got `11`" },
		{ "sz: 2Mi\n",
		    "t.yaml:1:5: `sz` in the top level (p) must be "
		    "between 4096 and 1048576 bytes, got `2Mi`" },
		{ "ms: 50ms\n",
		    "t.yaml:1:5: `ms` in the top level (p) must be "
		    "between 100 and 60000 ms, got `50ms`" },
	};
	char err[256];
	kb_conf *root;

	(void)state;
	root = parse("n: 10\nsz: 1Mi\nms: 1m\n");
	assert_int_equal(kb_conf_opts(root, opts, &b, "p", err, sizeof(err)),
	    KB_OK);
	assert_int_equal(b.n, 10);
	assert_int_equal(b.sz, 1 << 20);
	assert_int_equal(b.ms, 60000);
	kb_conf_opts_free(opts, &b);
	kb_conf_free(root);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		root = parse(cases[i].yaml);
		assert_int_equal(kb_conf_opts(root, opts, &b, "p", err,
				     sizeof(err)),
		    KB_EINVAL);
		assert_string_equal(err, cases[i].err);
		kb_conf_free(root);
	}
}

static void test_opts_bad_default(void **state)
{
	struct d {
		bool b;
		int64_t n;
	} d;
	static const struct kb_opt bad_bool[] = {
		KB_OPT_BOOL("b", struct d, b, "perhaps", "b"),
		KB_OPT_END,
	};
	static const struct kb_opt out_of_range[] = {
		KB_OPT_INT("n", struct d, n, "99", 1, 10, "n"),
		KB_OPT_END,
	};
	char err[256];

	(void)state;
	assert_int_equal(kb_conf_opts(NULL, bad_bool, &d, "p", err,
			     sizeof(err)),
	    KB_EINVAL);
	assert_string_equal(err,
	    "bad default `perhaps` for `b` (p): must be "
	    "a boolean");
	assert_int_equal(kb_conf_opts(NULL, out_of_range, &d, "p", err,
			     sizeof(err)),
	    KB_EINVAL);
	assert_string_equal(err,
	    "bad default `99` for `n` (p): must be an "
	    "integer");
}

/* Errors after strings were copied must free them (ASan checks). */
static void test_opts_no_leak_on_error(void **state)
{
	struct cfg c;

	(void)state;
	expect_opts_err("      path: /srv\n"
			"      label: mine\n"
			"      peers: [a, b, c]\n"
			"      extra: 1\n"
			"      timeout: soon\n",
	    "t.yaml:9:16: `timeout` in plugins[0].config (store-lmdb) must be "
	    "a duration (like 250ms, 10s or 1m30s), got `soon`");
	/* and a NULL err is fine */
	assert_int_equal(run_opts(PLUGIN_HEAD "      path: [x]\n", &c, NULL, 0,
			     NULL),
	    KB_EINVAL);
	assert_null(c.path);
}

static void test_opts_after_set(void **state)
{
	struct cfg c;
	char err[256];
	kb_conf *root = parse(PLUGIN_HEAD "      path: /srv\n");

	(void)state;
	assert_int_equal(kb_conf_set(root, "plugins[0].config.sync", "maybe",
			     err, sizeof(err)),
	    KB_OK);
	assert_int_equal(kb_conf_opts(kb_conf_path(root, "plugins[0].config"),
			     cfg_opts, &c, "store-lmdb", err, sizeof(err)),
	    KB_EINVAL);
	assert_string_equal(err,
	    "--set: `sync` in plugins[0].config "
	    "(store-lmdb) must be a boolean, got `maybe`");
	assert_int_equal(kb_conf_set(root, "plugins[0].config.sync", "no", err,
			     sizeof(err)),
	    KB_OK);
	assert_int_equal(kb_conf_opts(kb_conf_path(root, "plugins[0].config"),
			     cfg_opts, &c, "store-lmdb", err, sizeof(err)),
	    KB_OK);
	assert_false(c.sync);
	kb_conf_opts_free(cfg_opts, &c);
	kb_conf_free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_tree),
		cmocka_unit_test(test_parse_positions),
		cmocka_unit_test(test_parse_empty),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_duplicate_key),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_parse_deep),
		cmocka_unit_test(test_parse_small_err_buffer),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_set_override),
		cmocka_unit_test(test_set_create),
		cmocka_unit_test(test_set_errors),
		cmocka_unit_test(test_to_bool),
		cmocka_unit_test(test_to_int),
		cmocka_unit_test(test_to_double),
		cmocka_unit_test(test_to_size),
		cmocka_unit_test(test_to_duration),
		cmocka_unit_test(test_opts_defaults),
		cmocka_unit_test(test_opts_values),
		cmocka_unit_test(test_opts_strlist),
		cmocka_unit_test(test_opts_unknown_key),
		cmocka_unit_test(test_opts_unknown_key_line14),
		cmocka_unit_test(test_opts_missing),
		cmocka_unit_test(test_opts_wrong_type),
		cmocka_unit_test(test_opts_not_a_map),
		cmocka_unit_test(test_opts_bounds),
		cmocka_unit_test(test_opts_bad_default),
		cmocka_unit_test(test_opts_no_leak_on_error),
		cmocka_unit_test(test_opts_after_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
