/*
 * test-etcd.c — etcd.c's encoding without an etcd: base64 both ways (keys
 * and values travel so), the builders' JSON (a prefix's range end, int64
 * as strings), and reading replies as the JSON gateway gives them.
 * tests/integration/t-etcd.sh and t-cluster.sh talk to a real one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "etcd.h"
#include "unit.h"

static void
test_b64(void)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba",
		"foobar", "/switchd/www/journal/00000000000000000001", NULL };
	static const char *const coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
		"Zm9vYmE=", "Zm9vYmFy", NULL };
	char *e, *d;
	size_t i, len;

	for (i = 0; plain[i] != NULL; i++) {
		e = etcd_b64_encode(plain[i], strlen(plain[i]));
		if (coded[i] != NULL)
			CHECK_STR(e, coded[i]);
		d = etcd_b64_decode(e, &len);
		CHECK(d != NULL);
		if (d != NULL) {
			CHECK_INT((long long)len, (long long)strlen(plain[i]));
			CHECK_STR(d, plain[i]);
		}
		free(e);
		free(d);
	}
	/* Bytes beyond ASCII survive, NULs included. */
	e = etcd_b64_encode("\xff\x00\xfe", 3);
	CHECK_STR(e, "/wD+");
	d = etcd_b64_decode(e, &len);
	CHECK_INT((long long)len, 3);
	CHECK(d != NULL && memcmp(d, "\xff\x00\xfe", 3) == 0);
	free(e);
	free(d);
	CHECK(etcd_b64_decode("Zm9v!", NULL) == NULL);
}

static void
test_builders(void)
{
	json_t *op = etcd_op_range("/a/", 1, 5, 1), *r;
	json_t *cmp = etcd_cmp_create("/a/lock", 0);

	r = json_object_get(op, "request_range");
	CHECK_STR(json_string_value(json_object_get(r, "key")), "L2Ev");	/* "/a/" */
	CHECK_STR(json_string_value(json_object_get(r, "range_end")), "L2Ew");	/* "/a0" */
	CHECK_STR(json_string_value(json_object_get(r, "limit")), "5");
	CHECK_STR(json_string_value(json_object_get(r, "sort_order")), "DESCEND");
	CHECK_STR(json_string_value(json_object_get(cmp, "target")), "CREATE");
	CHECK_STR(json_string_value(json_object_get(cmp, "create_revision")), "0");
	json_decref(op);
	json_decref(cmp);
	op = etcd_op_put("/a/lock", "{}", 7587872634523);
	CHECK_STR(json_string_value(json_object_get(json_object_get(op, "request_put"),
	    "lease")), "7587872634523");
	json_decref(op);
}

static void
test_replies(void)
{
	/* As etcd 3.4's gateway answers a txn whose failure branch ran a range. */
	json_t *reply = json_loads("{\"header\":{\"revision\":\"12\"},\"responses\":"
	    "[{\"response_range\":{\"kvs\":[{\"key\":\"L2EvbG9jaw==\","
	    "\"create_revision\":\"9\",\"mod_revision\":\"9\",\"value\":"
	    "\"eyJpbnN0YW5jZSI6ImEifQ==\"}],\"count\":\"1\"}}]}", 0, NULL);
	json_t *kv, *v;
	char *key;

	CHECK(reply != NULL);
	CHECK(!etcd_txn_ok(reply));
	CHECK_INT(etcd_int(json_object_get(reply, "header"), "revision"), 12);
	kv = json_array_get(etcd_txn_kvs(reply, 0), 0);
	CHECK(kv != NULL);
	CHECK_INT(etcd_int(kv, "create_revision"), 9);
	key = etcd_kv_key(kv);
	CHECK_STR(key, "/a/lock");
	free(key);
	v = etcd_kv_json(kv);
	CHECK_STR(json_string_value(json_object_get(v, "instance")), "a");
	json_decref(v);
	CHECK(etcd_txn_kvs(reply, 1) == NULL);
	CHECK_INT(etcd_int(kv, "missing"), 0);
	json_decref(reply);
}

int
main(void)
{
	RUN(test_b64);
	RUN(test_builders);
	RUN(test_replies);
	return unit_summary();
}
