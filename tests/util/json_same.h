/* json_same.h -- comparing a tree from lossd's JSON reader
 * (server/json_tree.h) with the tree cJSON reads from the same text, node
 * by node.  No Criterion here, so the benchmarks link it too.
 *
 * Thread-safety: reentrant; the trees are only read. */
#ifndef TEST_JSON_SAME_H
#define TEST_JSON_SAME_H

#include <cjson/cJSON.h>

/* 1 when the sibling lists at a and b are equal node by node: types,
 * keys, strings, valueint, valuedouble bit for bit, and children (with a
 * back link to the last child, or none, alike). */
int json_same_tree(const cJSON *a, const cJSON *b);

/* 1 when every container below node has its children linked as cJSON
 * links them: next forward to NULL, prev backward, and the first child's
 * prev at the last. */
int json_links_ok(const cJSON *node);

/* 1 when mine, read with packed arrays (srv_json_tree_parse_packed), is
 * cJSON's tree theirs: a packed array there stands for an array of
 * numbers here, one at least, bit for bit; every array of numbers only is
 * packed; and everything else is as json_same_tree wants it, with cJSON's
 * links. */
int json_same_packed(const cJSON *mine, const cJSON *theirs);

#endif
