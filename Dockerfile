# The project's Airflow image: the official image plus this project's requirements, installed at
# build time (not at container start), and the package under include/ installed in place.
FROM apache/airflow:3.3.2-python3.11

USER root
# WeasyPrint renders with Pango; DejaVu fonts are the report's fonts.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
USER airflow

COPY --chown=airflow:root requirements.txt pyproject.toml README.md /opt/airflow/project/
COPY --chown=airflow:root include /opt/airflow/project/include
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/airflow/project/requirements.txt \
 && pip install --no-cache-dir --no-deps -e /opt/airflow/project
