"""The one door to the Kubernetes API: the only place ``kubernetes`` and ``urllib3`` appear.

- :mod:`webservice.kube.kubeconfig`: read the tool's kubeconfig (certificates relative to it,
  size bounds, one-line reasons).
- :mod:`webservice.kube.cluster`: the client: list, get, apply, delete, with retries, the
  namespace guard (only ``tool-<tool>``) and the label guard (only our objects).
- :mod:`webservice.kube.apiresources`: kinds to API paths.
- :mod:`webservice.kube.watching`: watch streams (resume, 410 Gone, ticks).
- :mod:`webservice.kube.apierrors`: HTTP answers and ``ApiException`` translated into the
  project's error tree (``webservice.errors``), at this boundary and nowhere else.

Nothing here decides what to run or prints.
"""
