/* Small vector helpers shared by the backends and the runtime. */
#ifndef UQ_CORE_VEC_H
#define UQ_CORE_VEC_H

#include <stdint.h>

/* Dot product with 8 partial sums in a fixed order (vectorizable, and the
 * same result wherever it runs). */
float uq_dot_f32(const float *a, const float *b, int64_t n);

#endif
