/* Internal helpers around uq_model / uq_weight. */
#ifndef UQ_MODEL_INTERNAL_H
#define UQ_MODEL_INTERNAL_H

#include "quant/quant.h"

/* The quantizer parameters of a quantized weight. A symmetric weight with one
 * scale per row (recorded with group_size = cols) maps to group_size 0. */
uq_qparams uq_weight_qparams(const uq_weight *w);

#endif
