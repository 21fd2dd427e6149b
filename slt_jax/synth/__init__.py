"""A synthetic GSL-like corpus: invented signers signing an invented sign language.

The pipeline, one module per step:

  presets    corpus sizes (gsl, small, tiny) and GSL's glosses-per-sentence distribution
  language   glosses, sentences and their spoken translations with word-to-gloss alignment
  lexicon    each gloss's sign form: hands, handshape, location, orientation, movement
  signer     bodies, camera placement and signing habits; sign locations; arm inverse kinematics
  motion     a sentence's hand states per frame (signs, transitions, rests) and sign spans
  hand, face the 21 hand and 468 face landmarks
  geometry   quaternions and per-frame rigid motions; signal: easing, smoothing, drift
  skeleton   all 543 landmarks in 3-D
  tracker    the camera's view with MediaPipe-like jitter and lost hands
  corpus     the schedule of signers x sentences x repetitions, and writing it all to disk
  render     stick-figure strips and animations of any pose sequence
"""
