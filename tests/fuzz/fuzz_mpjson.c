/*
 * fuzz_mpjson.c - libFuzzer target for proto/mpjson.c.
 *
 * Invariants checked (abort on violation):
 * - decoding refuses cleanly (QP_EPROTO/QP_ETOOBIG, no value) or succeeds;
 * - what decodes also passes the pre-check over exactly all its bytes, and
 *   no proper prefix of it decodes (one value, no trailing bytes);
 * - decode -> encode -> decode gives an equal value, and encoding that
 *   again gives the same bytes (encoding is a fixpoint).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mpjson.h"

#define LIMIT ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	json_t *v = NULL, *w = NULL, *p = NULL;
	char *enc = NULL, *enc2 = NULL;
	size_t n = 0, n2 = 0, used = 0;
	int rc;

	rc = qp_mpjson_decode(in, size, LIMIT, &v);
	if (rc != 0) {
		if ((rc != QP_EPROTO && rc != QP_ETOOBIG) || v != NULL)
			abort();
		return 0;
	}
	if (v == NULL)
		abort();
	if (qp__mpjson_check(in, size, QP_MPJSON_MAX_DEPTH, &used) != 0 ||
	    used != size)
		abort();
	if (qp_mpjson_decode(in, size - 1, LIMIT, &p) != QP_EPROTO || p != NULL)
		abort();

	/* bin becomes a hex string, float32 a float64: the re-encoding may
	 * be longer, so decode it without the size limit. */
	if (qp_mpjson_encode(v, &enc, &n) != 0)
		abort();
	if (qp_mpjson_decode(enc, n, SIZE_MAX, &w) != 0)
		abort();
	if (!json_equal(v, w))
		abort();
	if (qp_mpjson_encode(w, &enc2, &n2) != 0)
		abort();
	if (n2 != n || memcmp(enc, enc2, n) != 0)
		abort();

	free(enc);
	free(enc2);
	json_decref(v);
	json_decref(w);
	return 0;
}
