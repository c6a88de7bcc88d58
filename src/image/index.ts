/**
 * Image preprocessing, public surface: `toTransferable` on the main thread, `preprocessImage` in
 * the worker, `sizeForImage` anywhere (token counts before any pixel work).
 */
export { sizeForImage, roundHalfEven, type ImageSize, type SizeOptions, type SizeRounding } from './size.js';
export {
  decodeImage,
  toTransferable,
  transferList,
  probeImageSize,
  checkImageHeader,
  checkImageSize,
  IMAGE_LIMITS,
  type ImageInput,
  type TransferableImage,
  type RgbaImage,
  type ProbedSize,
} from './decode.js';
export { resizeBicubicRgb } from './resample.js';
export {
  preprocessImage,
  preprocessDecoded,
  checkPreprocessOptions,
  preprocessOptionsFor,
  resizeForModel,
  normalizeToChw,
  compositeOnWhite,
  CLIP_MEAN,
  CLIP_STD,
  type PreprocessOptions,
  type PreprocessedImage,
  type ResizedImage,
} from './preprocess.js';
