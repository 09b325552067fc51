/* Shared between the safetensors reader, the model-folder layer and the writer. */
#ifndef UQ_IO_SAFETENSORS_INTERNAL_H
#define UQ_IO_SAFETENSORS_INTERNAL_H

#include "core/error.h"

/* Name of the index file of a sharded model with base name "model". */
#define UQ_ST_INDEX_SUFFIX ".safetensors.index.json"

#endif
